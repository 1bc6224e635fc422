"""floe's runtime for Python functions.

floe starts it through `python3 /var/runtime/python/bootstrap.py` inside an
execution environment, with the working directory at the task root. It speaks the Lambda
Runtime API (2018-06-01) at $AWS_LAMBDA_RUNTIME_API: it imports the handler named
by $_HANDLER once (the init phase), then loops over GET /next, calls the handler
and posts its result or its error. Users see what Lambda's Python runtime shows
them: the same context object, the same error types, messages and log lines.

What it is not: a general HTTP client, a log shipper, or a sandbox. It runs with
the standard library of Python 3.8 and later and nothing else.

Cold start is part of every user's latency, so startup imports only C modules
(`_socket`, `_json`) that load in well under a millisecond; `json`, `re`,
`http.client` and `logging` would cost tens of milliseconds. `traceback` is
imported only when there is an error to report, and `logging` is configured
only if the user's code imports it. The code lives in this module rather than
in bootstrap.py because Python compiles a script on every start but caches
the bytecode of an imported module (__pycache__): 4 to 8 ms saved per cold
start, provided __pycache__ is writable once or precompiled
(`python3 -m compileall`).
"""

import _json
import _socket
import os
import sys
import time

API_PREFIX = "/2018-06-01/runtime"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
# Lambda's Python runtime indents its error log lines with no-break spaces and
# joins them with carriage returns, so that one error stays one log record.
ERROR_LOG_INDENT = "\u00a0"
ERROR_LOG_LINE_JOIN = "\r"


class Fault(Exception):
    """An error the runtime reports with one of Lambda's `Runtime.*` types."""

    def __init__(self, error_type, message, stack_trace=None):
        Exception.__init__(self, message)
        self.error_type = error_type
        self.message = message
        self.stack_trace = stack_trace or []


# ---------------------------------------------------------------------------
# The Runtime API connection


class RuntimeApiError(Exception):
    pass


class _ConnectionLost(Exception):
    """The peer closed the connection; `fresh` says whether it had answered
    nothing at all on this request (so that resending it is safe)."""

    def __init__(self, fresh):
        Exception.__init__(self, "connection closed by the Runtime API")
        self.fresh = fresh


class RuntimeApiConnection(object):
    """One persistent HTTP/1.1 connection to the Runtime API.

    Each request goes out in one system call (headers and body together) on a
    socket with TCP_NODELAY, so that neither Nagle's algorithm nor delayed
    acknowledgements stand between a response and the next GET /next.
    """

    def __init__(self, address):
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise RuntimeApiError("AWS_LAMBDA_RUNTIME_API must be host:port, got %r" % address)
        self.host_header = address
        # Bytes, not str: a str host name goes through the IDNA codec, whose
        # import (with `re` and `unicodedata`) costs more than all the rest.
        self.host = host.strip("[]").encode("ascii")
        self.port = int(port)
        self.sock = None
        self.buf = bytearray()
        self.requests_on_socket = 0

    def _connect(self):
        last_error = None
        for family, kind, proto, _, addr in _socket.getaddrinfo(
            self.host, self.port, 0, _socket.SOCK_STREAM
        ):
            sock = _socket.socket(family, kind, proto)
            try:
                sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
                sock.connect(addr)
            except OSError as e:
                sock.close()
                last_error = e
                continue
            self.sock = sock
            self.buf = bytearray()
            self.requests_on_socket = 0
            return
        raise RuntimeApiError("cannot connect to the Runtime API at %s: %s" % (self.host_header, last_error))

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def request(self, method, path, body=None, content_type="application/json", headers=""):
        """Sends one request and returns (status, headers, body).

        A connection the server closed while idle is replaced once, when the
        server had not begun to answer; this is the usual keep-alive race and
        the request cannot have been processed.
        """
        head = "%s %s HTTP/1.1\r\nHost: %s\r\n" % (method, path, self.host_header)
        if body is not None:
            head += "Content-Type: %s\r\nContent-Length: %d\r\n" % (content_type, len(body))
        head = (head + headers + "\r\n").encode("latin-1")
        for attempt in (0, 1):
            if self.sock is None:
                self._connect()
            reused = self.requests_on_socket > 0
            try:
                self._send(head, body)
                self.requests_on_socket += 1
                return self._read_response()
            except (_ConnectionLost, OSError) as e:
                self.close()
                fresh = getattr(e, "fresh", True)
                if attempt or not reused or not fresh:
                    raise RuntimeApiError("%s %s: %s" % (method, path, e))

    def _send(self, head, body):
        if not body:
            self.sock.sendall(head)
        elif len(body) < 65536:
            self.sock.sendall(head + body)
        else:
            # Scatter-gather: one system call without copying a large body.
            sent = self.sock.sendmsg([head, body])
            if sent < len(head):
                self.sock.sendall(head[sent:])
                self.sock.sendall(body)
            elif sent < len(head) + len(body):
                self.sock.sendall(memoryview(body)[sent - len(head) :])

    def _fill(self, fresh_if_empty):
        chunk = self.sock.recv(262144)
        if not chunk:
            raise _ConnectionLost(fresh_if_empty)
        self.buf += chunk

    def _read_response(self):
        buf = self.buf
        start = 0
        while True:
            end = buf.find(b"\r\n\r\n", start)
            if end >= 0:
                break
            start = max(0, len(buf) - 3)
            self._fill(not buf)
        lines = buf[:end].decode("utf-8", "surrogateescape").split("\r\n")
        del buf[: end + 4]
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()

        length = headers.get("content-length")
        if status < 200 or status in (204, 304):
            body = bytearray()
        elif length is not None:
            length = int(length)
            while len(buf) < length:
                self._fill(False)
            body = buf[:length]
            del buf[:length]
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            while True:
                try:
                    self._fill(False)
                except _ConnectionLost:
                    break
            body = buf[:]
            del buf[:]
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body

    def _read_chunked(self):
        buf = self.buf
        body = bytearray()
        while True:
            while b"\r\n" not in buf:
                self._fill(False)
            end = buf.index(b"\r\n")
            size = int(bytes(buf[:end]).split(b";", 1)[0], 16)
            del buf[: end + 2]
            if size == 0:
                # Trailers, up to an empty line.
                while True:
                    while b"\r\n" not in buf:
                        self._fill(False)
                    end = buf.index(b"\r\n")
                    del buf[: end + 2]
                    if end == 0:
                        return body
            while len(buf) < size + 2:
                self._fill(False)
            body += buf[:size]
            del buf[: size + 2]


# ---------------------------------------------------------------------------
# JSON, as `json.loads` / `json.dumps` do it, on the C accelerator directly


class _JsonScannerOptions(object):
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__
    memo = {}


_scan_json = _json.make_scanner(_JsonScannerOptions())
_JSON_WHITESPACE = " \t\n\r"
# Lambda's python3.12 and later runtimes stopped escaping non-ASCII characters.
_encode_json_string = _json.encode_basestring if sys.version_info >= (3, 12) else _json.encode_basestring_ascii
_DECIMAL_MARK = "\x00floe-decimal-%x\x00" % id(_JsonScannerOptions)
_ENCODED_DECIMAL_MARK = _encode_json_string(_DECIMAL_MARK)


def json_loads(text):
    """json.loads(text); on any failure, json.loads itself reports it."""
    start = 0
    while start < len(text) and text[start] in _JSON_WHITESPACE:
        start += 1
    try:
        value, end = _scan_json(text, start)
        if not text[end:].strip(_JSON_WHITESPACE):
            return value
    except Exception:
        pass
    import json

    return json.loads(text)


def json_dumps(value):
    """json.dumps(value), plus Decimal numbers written exactly (Lambda's
    runtime serialises them with simplejson's use of Decimal)."""
    decimals = []

    def default(o):
        cls = type(o)
        if cls.__name__ == "Decimal" and cls.__module__ in ("decimal", "_decimal", "_pydecimal"):
            if o.is_nan():
                return float("nan")
            decimals.append(str(o))
            return _DECIMAL_MARK
        raise TypeError("Object of type %s is not JSON serializable" % cls.__name__)

    encode = _json.make_encoder({}, default, _encode_json_string, None, ": ", ", ", False, False, True)
    text = "".join(encode(value, 0))
    if decimals:
        parts = text.split(_ENCODED_DECIMAL_MARK)
        if len(parts) == len(decimals) + 1:
            out = [parts[0]]
            for number, part in zip(decimals, parts[1:]):
                out.append(number)
                out.append(part)
            text = "".join(out)
    return text


# ---------------------------------------------------------------------------
# The context object handed to the handler, shaped like Lambda's


class CognitoIdentity(object):
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __repr__(self):
        return "CognitoIdentity([cognito_identity_id=%s,cognito_identity_pool_id=%s])" % (
            self.cognito_identity_id,
            self.cognito_identity_pool_id,
        )


class Client(object):
    __slots__ = ["installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name"]

    def __repr__(self):
        return "Client([%s])" % ",".join("%s=%s" % (f, getattr(self, f)) for f in self.__slots__)


class ClientContext(object):
    __slots__ = ["custom", "env", "client"]

    def __repr__(self):
        return "ClientContext([custom=%s,env=%s,client=%s])" % (self.custom, self.env, self.client)


def _object_from_dict(cls, fields):
    obj = cls()
    for name in cls.__slots__:
        setattr(obj, name, fields.get(name))
    return obj


def _parse_json_header(value, what):
    try:
        return json_loads(value)
    except Exception as e:
        raise Fault("Runtime.LambdaContextUnmarshalError", "Unable to parse %s JSON: %s" % (what, e))


class LambdaContext(object):
    def __init__(self, request_id, deadline_ms, invoked_function_arn, client_context, cognito_identity):
        env = os.environ
        self.aws_request_id = request_id
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        # A string, as in Lambda (it is read from the environment there too).
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = None
        self.client_context = None
        if client_context:
            fields = _parse_json_header(client_context, "Client Context")
            self.client_context = _object_from_dict(ClientContext, fields)
            if isinstance(self.client_context.client, dict):
                self.client_context.client = _object_from_dict(Client, self.client_context.client)
        self.identity = _object_from_dict(CognitoIdentity, {})
        if cognito_identity:
            fields = _parse_json_header(cognito_identity, "Cognito Identity")
            self.identity.cognito_identity_id = fields.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = fields.get("cognitoIdentityPoolId")
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        remaining = self._deadline_ms - int(time.time() * 1000)
        return remaining if remaining > 0 else 0

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            "LambdaContext([aws_request_id=%s,log_group_name=%s,log_stream_name=%s,function_name=%s,"
            "memory_limit_in_mb=%s,function_version=%s,invoked_function_arn=%s,client_context=%s,"
            "identity=%s,tenant_id=%s])"
            % (
                self.aws_request_id,
                self.log_group_name,
                self.log_stream_name,
                self.function_name,
                self.memory_limit_in_mb,
                self.function_version,
                self.invoked_function_arn,
                self.client_context,
                self.identity,
                self.tenant_id,
            )
        )


# ---------------------------------------------------------------------------
# Errors: the body posted to the Runtime API and the log record


def error_body(error_type, message, stack_trace, request_id=""):
    return {
        "errorMessage": message or "",
        "errorType": error_type or "",
        "requestId": request_id or "",
        "stackTrace": stack_trace or [],
    }


RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def error_from_exception(exc):
    """errorType, errorMessage and stackTrace for an exception raised by user
    code, without the runtime's own frames at the top of the traceback."""
    import traceback

    frames = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(exc.__traceback__)]
    for i, frame in enumerate(frames):
        if not frame[0].startswith(RUNTIME_DIR):
            frames = frames[i:]
            break
    return type(exc).__name__, str(exc), traceback.format_list(frames)


def log_error(body):
    """Writes an error the way Lambda's Python runtime does: one record on
    stdout, `[ERROR] Type: message` and then the traceback."""
    description = "[ERROR]"
    if body["errorType"]:
        description += " " + body["errorType"]
    if body["errorMessage"]:
        if body["errorType"]:
            description += ":"
        description += " " + body["errorMessage"]
    lines = [description, "Traceback (most recent call last):"]
    for element in body["stackTrace"]:
        if element == "":
            lines.append("")
        for line in element.splitlines():
            stripped = line.lstrip(" ")
            lines.append(ERROR_LOG_INDENT * (len(line) - len(stripped)) + stripped)
    sys.stdout.write(ERROR_LOG_LINE_JOIN.join(lines) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------
# Init: finding the handler


def load_handler(handler):
    try:
        module_name, function_name = handler.rsplit(".", 1)
    except ValueError as e:
        raise Fault("Runtime.MalformedHandlerName", "Bad handler '%s': %s" % (handler, e))

    if module_name.split(".")[0] in sys.builtin_module_names:
        raise Fault(
            "Runtime.BuiltInModuleConflict",
            "Cannot use built-in module %s as a handler module" % module_name,
        )
    import_name = module_name.replace("/", ".")
    try:
        __import__(import_name)
        module = sys.modules[import_name]
    except ImportError as e:
        raise Fault("Runtime.ImportModuleError", "Unable to import module '%s': %s" % (module_name, e))
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise Fault(
            "Runtime.UserCodeSyntaxError",
            "Syntax error in module '%s': %s" % (module_name, e),
            trace,
        )
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise Fault(
            "Runtime.HandlerNotFound",
            "Handler '%s' missing on module '%s'" % (function_name, module_name),
        )


def set_task_root_first():
    """Puts the task root where Python put this script's directory: first,
    ahead of $PYTHONPATH, the standard library and site-packages."""
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    script_dirs = (RUNTIME_DIR[:-1], os.path.dirname(os.path.realpath(__file__)))
    if sys.path and sys.path[0] in script_dirs:
        sys.path[0] = task_root
    else:
        sys.path.insert(0, task_root)


# ---------------------------------------------------------------------------
# logging, configured as Lambda does it, but only once user code imports it

_current_request_id = ""


def configure_logging(logging):
    logging.Formatter.converter = time.gmtime

    class LambdaLogHandler(logging.Handler):
        def emit(self, record):
            try:
                sys.stdout.write(self.format(record))
            except Exception:
                self.handleError(record)

    class RequestIdFilter(logging.Filter):
        def filter(self, record):
            record.aws_request_id = _current_request_id
            return True

    handler = LambdaLogHandler()
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    if level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        root.setLevel(level)
    root.addHandler(handler)


class LoggingImportHook(object):
    """A meta path finder that lets `logging` load normally and configures it
    right after, whenever the first `import logging` happens."""

    def find_spec(self, name, path=None, target=None):
        if name != "logging":
            return None
        sys.meta_path.remove(self)
        spec = None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            spec = find_spec(name, path, target) if find_spec else None
            if spec is not None:
                break
        loader = spec and spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def exec_and_configure(module):
            exec_module(module)
            try:
                configure_logging(module)
            except Exception:
                pass  # a user module named `logging`: leave it alone

        loader.exec_module = exec_and_configure
        return spec


def install_logging():
    if "logging" in sys.modules:
        configure_logging(sys.modules["logging"])
    else:
        sys.meta_path.insert(0, LoggingImportHook())


# ---------------------------------------------------------------------------
# The invocation loop


def invoke(api, handler):
    global _current_request_id
    status, headers, body = api.request("GET", API_PREFIX + "/invocation/next")
    if status != 200:
        raise RuntimeApiError("GET /invocation/next: HTTP %d: %s" % (status, bytes(body)[:200]))
    request_id = headers.get("lambda-runtime-aws-request-id", "")
    _current_request_id = request_id
    trace_id = headers.get("lambda-runtime-trace-id")
    if trace_id:
        os.environ["_X_AMZN_TRACE_ID"] = trace_id
    elif "_X_AMZN_TRACE_ID" in os.environ:
        del os.environ["_X_AMZN_TRACE_ID"]

    error = None
    try:
        context = LambdaContext(
            request_id,
            int(headers.get("lambda-runtime-deadline-ms") or 0),
            headers.get("lambda-runtime-invoked-function-arn"),
            headers.get("lambda-runtime-client-context"),
            headers.get("lambda-runtime-cognito-identity"),
        )
        content_type = headers.get("content-type", "application/json")
        if content_type.split(";")[0].strip() == "application/json":
            try:
                event = json_loads(body.decode("utf-8", "surrogatepass"))
            except Exception as e:
                raise Fault("Runtime.UnmarshalError", "Unable to unmarshal input: %s" % e)
        else:
            event = bytes(body)
        result = handler(event, context)
        if isinstance(result, bytes):
            response, response_type = result, "application/unknown"
        else:
            try:
                response = json_dumps(result).encode("utf-8")
            except Exception as e:
                raise Fault("Runtime.MarshalError", "Unable to marshal response: %s" % e)
            response_type = "application/json"
    except Fault as e:
        error = error_body(e.error_type, e.message, e.stack_trace, request_id)
    except Exception as e:
        error = error_body(*error_from_exception(e), request_id=request_id)

    # Everything the invocation printed reaches the log before its end does.
    sys.stdout.flush()
    sys.stderr.flush()
    if error is None:
        path = API_PREFIX + "/invocation/" + request_id + "/response"
        status, _, reply = api.request("POST", path, response, response_type)
    else:
        log_error(error)
        path = API_PREFIX + "/invocation/" + request_id + "/error"
        status, _, reply = api.request("POST", path, json_dumps(error).encode("utf-8"))
    if status >= 500:
        raise RuntimeApiError("POST %s: HTTP %d: %s" % (path, status, bytes(reply)[:200]))
    if status >= 300:
        sys.stderr.write("floe runtime: POST %s: HTTP %d: %s\n" % (path, status, bytes(reply)[:200].decode("utf-8", "replace")))


def main():
    # stdout and stderr are pipes to floe's log: write each line as it ends.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True)
        except (AttributeError, ValueError):
            pass
    set_task_root_first()
    install_logging()
    api = RuntimeApiConnection(os.environ.get("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"))
    handler_name = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("_HANDLER", "")

    try:
        handler = load_handler(handler_name)
    except Fault as e:
        error = error_body(e.error_type, e.message, e.stack_trace)
    except Exception as e:
        error = error_body(*error_from_exception(e))
    else:
        error = None
    if error is not None:
        log_error(error)
        sys.stderr.flush()
        status, _, _ = api.request(
            "POST",
            API_PREFIX + "/init/error",
            json_dumps(error).encode("utf-8"),
            headers="%s: %s\r\n" % (ERROR_TYPE_HEADER, error["errorType"]),
        )
        sys.exit(1)

    while True:
        invoke(api, handler)



def run():
    """The entry point: bootstrap.py calls this."""
    try:
        main()
    except RuntimeApiError as e:
        sys.stderr.write("floe runtime: %s\n" % e)
        sys.exit(1)
