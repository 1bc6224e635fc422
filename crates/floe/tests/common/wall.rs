//! The message wall: its function, and its load: a Python client that POSTs from many threads (spread
//! over one or more trigger listeners, retrying 429s as API Gateway's clients must),
//! and the check of the wall it leaves: one whole line per POST.

use serde_json::Value;

use super::up::Up;

/// The wall function (handler `app.handler`), mounting its file system at
/// `/mnt/msg`: POST appends `id<TAB>text` under an exclusive flock, GET lists the
/// messages under a shared one, DELETE /messages/{id} removes one.
pub const HANDLER: &str = r#"import base64, fcntl, json, os, uuid

WALL = '/mnt/msg/wall.txt'

def handler(event, context):
    # An exception answers its traceback, so that a load test shows why a POST failed.
    try:
        return wall(event)
    except Exception:
        import traceback
        return {'statusCode': 500, 'body': traceback.format_exc()}

def wall(event):
    method = event['requestContext']['http']['method']
    if method == 'POST':
        text = event.get('body') or ''
        if event.get('isBase64Encoded'):
            text = base64.b64decode(text).decode()
        mid = uuid.uuid4().hex
        with open(WALL, 'a') as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write(mid + '\t' + text + '\n')
            f.flush()
        return {'statusCode': 201, 'headers': {'content-type': 'application/json'}, 'body': json.dumps({'id': mid})}
    if method == 'GET':
        try:
            with open(WALL) as f:
                fcntl.flock(f, fcntl.LOCK_SH)
                lines = f.read().splitlines()
        except FileNotFoundError:
            lines = []
        return [dict(zip(('id', 'text'), l.split('\t', 1))) for l in lines]
    if method == 'DELETE':
        mid = event['pathParameters']['id']
        try:
            f = open(WALL, 'r+')
        except FileNotFoundError:
            return {'statusCode': 404}
        with f:
            fcntl.flock(f, fcntl.LOCK_EX)
            lines = f.read().splitlines(keepends=True)
            kept = [l for l in lines if not l.startswith(mid + '\t')]
            f.seek(0)
            f.truncate()
            f.writelines(kept)
        return {'statusCode': 204 if len(kept) < len(lines) else 404}
    return {'statusCode': 405, 'body': 'method not allowed'}
"#;

/// argv: comma-separated base URLs, clients, POSTs per client, first message number.
const LOAD_CLIENT: &str = r#"
import http.client, json, sys, threading, time, urllib.parse
bases, clients, per_client, start = sys.argv[1].split(','), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
statuses = {}
lock = threading.Lock()
def connect(c):
    u = urllib.parse.urlparse(bases[c % len(bases)])
    return http.client.HTTPConnection(u.hostname, u.port, timeout=120)
def client(c):
    conn = connect(c)
    for i in range(start, start + per_client):
        body = f'msg-{c}-{i}'
        while True:
            try:
                conn.request('POST', '/messages', body=body, headers={'content-type': 'text/plain'})
                r = conn.getresponse()
                answer = r.read()
            except (ConnectionError, http.client.HTTPException):
                conn.close()
                conn = connect(c)
                with lock:
                    statuses['reconnect'] = statuses.get('reconnect', 0) + 1
                continue
            with lock:
                statuses[r.status] = statuses.get(r.status, 0) + 1
            if r.status == 429:
                time.sleep(0.005)
                continue
            if r.status != 201:
                print(f'unexpected status {r.status}: {answer[:2000]!r}', file=sys.stderr)
            break
threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
t0 = time.time()
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({'statuses': statuses, 'seconds': time.time() - t0}))
"#;

/// Runs the load client with `up`'s interpreter against `bases` (comma-separated
/// trigger URLs): `clients` threads, each POSTing messages `start..start+n`. Returns
/// its JSON summary (`statuses`, `seconds`).
pub fn load(up: &Up, bases: &str, clients: usize, n: usize, start: usize) -> Value {
    let out = up.python(LOAD_CLIENT, &[bases, &clients.to_string(), &n.to_string(), &start.to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "load client: {stderr}");
    if !stderr.trim().is_empty() {
        eprintln!("load client said:\n{stderr}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    serde_json::from_str::<Value>(stdout.lines().last().unwrap_or("")).expect("load client result")
}

/// Checks a wall of `id<TAB>msg-<client>-<n>` lines: none torn, each message once,
/// exactly `clients * per_client` of them.
pub fn assert_whole_lines(text: &str, clients: usize, per_client: usize) {
    let mut seen = std::collections::HashSet::new();
    for line in text.lines() {
        let (id, msg) = line.split_once('\t').unwrap_or_else(|| panic!("torn line {line:?}"));
        assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "torn line {line:?}");
        let mut parts = msg.split('-');
        let ok = parts.next() == Some("msg")
            && parts.next().and_then(|c| c.parse::<usize>().ok()).is_some_and(|c| c < clients)
            && parts.next().and_then(|i| i.parse::<usize>().ok()).is_some_and(|i| i < per_client)
            && parts.next().is_none();
        assert!(ok, "torn line {line:?}");
        assert!(seen.insert(msg.to_string()), "{msg} written twice");
    }
    assert_eq!(seen.len(), clients * per_client, "exactly one line per POST");
}
