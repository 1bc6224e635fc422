# Helpers of the Lambda API tests, run after the prelude of TestNode::boto3
# (which defines lam, json, base64, botocore and out).
import datetime, io, os, time, urllib.error, urllib.request, zipfile
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ROLE = 'arn:aws:iam::123456789012:role/floe-test'
RUNTIME = 'python3.11'
ENDPOINT = lam.meta.endpoint_url
REGION = lam.meta.region_name
KEYS = Credentials(os.environ['AWS_ACCESS_KEY_ID'], os.environ['AWS_SECRET_ACCESS_KEY'])

HANDLER = r'''
import json, os
def handler(event, context):
    if isinstance(event, dict) and event.get('fail'):
        raise ValueError('asked to fail')
    print('handling', json.dumps(event))
    custom = context.client_context.custom if context.client_context else None
    return {'event': event, 'function': context.function_name, 'memory': context.memory_limit_in_mb,
            'greeting': os.environ.get('GREETING'), 'custom': custom, 'version': 1}
'''

def zip_of(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as z:
        for name, source in files.items():
            z.writestr(name, source)
    return buf.getvalue()

# A client that sends what it is given: botocore's parameter validation off, so
# that bad values reach the server.
from botocore.config import Config
lax = boto3.client('lambda', endpoint_url=ENDPOINT,
                   config=Config(parameter_validation=False, retries={'max_attempts': 1, 'mode': 'standard'}))

def create(name, source=HANDLER, client=None, **kw):
    args = dict(FunctionName=name, Runtime=RUNTIME, Role=ROLE, Handler='app.handler',
                Code={'ZipFile': zip_of({'app.py': source})})
    args.update(kw)
    return (client or lam).create_function(**args)

def error_of(call, *args, **kw):
    """The AWS error a call ends with: [status, code, message, Reason], or None."""
    try:
        call(*args, **kw)
    except botocore.exceptions.ClientError as e:
        return [e.response['ResponseMetadata']['HTTPStatusCode'], e.response['Error']['Code'],
                e.response['Error'].get('Message', ''), e.response.get('Reason')]
    return None

def raw(method, path, body=b'', headers=None, sign=True, keys=None, at=None):
    """A request signed by botocore (with keys, at a time) or not, sent as it is:
    (status, headers with lower-case names, body)."""
    if isinstance(body, str):
        body = body.encode()
    req = AWSRequest(method=method, url=ENDPOINT + path, data=body, headers=dict(headers or {}))
    if sign:
        saved = botocore.auth.get_current_datetime
        if at is not None:
            botocore.auth.get_current_datetime = lambda remove_tzinfo=True: at
        try:
            botocore.auth.SigV4Auth(keys or KEYS, 'lambda', REGION).add_auth(req)
        finally:
            botocore.auth.get_current_datetime = saved
    prepared = req.prepare()
    request = urllib.request.Request(prepared.url, data=prepared.body if body else None, method=method,
                                     headers=dict(prepared.headers))
    try:
        with urllib.request.urlopen(request) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()

def raw_error(*args, **kw):
    """[status, X-Amzn-ErrorType, message] of a raw request."""
    status, headers, body = raw(*args, **kw)
    try:
        message = json.loads(body).get('message', '')
    except ValueError:
        message = body.decode(errors='replace')
    return [status, headers.get('x-amzn-errortype'), message]

def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
