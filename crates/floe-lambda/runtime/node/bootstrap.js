'use strict';
/*
 * floe's runtime for Node.js functions.
 *
 * floe starts it as `node /var/runtime/node/bootstrap.js` inside an execution
 * environment, with the working directory at the task root. It speaks the
 * Lambda Runtime API (2018-06-01) at $AWS_LAMBDA_RUNTIME_API: it loads the
 * handler named by $_HANDLER once (the init phase), then loops over GET /next,
 * calls the handler and posts its result or its error. Users see what Lambda's
 * Node.js runtime shows them: handler resolution (CommonJS and ES modules), the
 * context object, async and callback handlers, waiting for an empty event
 * loop, the error types, the console log format and the exit statuses.
 *
 * What it is not: a general HTTP client, a log shipper, or a sandbox. It needs
 * Node.js 18 or later and no npm package. Response streaming
 * (`awslambda.streamifyResponse`) is not supported.
 */

const net = require('net');
const fs = require('fs');
const path = require('path');
const util = require('util');

const API_PREFIX = '/2018-06-01/runtime';
const ERROR_TYPE_HEADER = 'Lambda-Runtime-Function-Error-Type';
// Exit statuses of Lambda's Node.js runtime, which users see in their logs as
// "Runtime exited with error: exit status 129".
const EXIT_UNCAUGHT_EXCEPTION = 129;
const EXIT_UNHANDLED_REJECTION = 128;

// ---------------------------------------------------------------------------
// Errors, named as Lambda names them

function runtimeError(name) {
  const cls = class extends Error {};
  Object.defineProperty(cls, 'name', { value: name });
  cls.prototype.name = `Runtime.${name}`;
  return cls;
}
const ImportModuleError = runtimeError('ImportModuleError');
const HandlerNotFound = runtimeError('HandlerNotFound');
const MalformedHandlerName = runtimeError('MalformedHandlerName');
const UserCodeSyntaxError = runtimeError('UserCodeSyntaxError');
const UnhandledPromiseRejection = runtimeError('UnhandledPromiseRejection');
const NodeJsExit = runtimeError('NodeJsExit');
const NODEJS_EXIT_MESSAGE =
  'The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a Promise that was never settled. For more information, see https://nodejs.org/docs/latest/api/process.html#exit-codes';

function looksLikeError(e) {
  return (
    e &&
    typeof e.name === 'string' &&
    typeof e.message === 'string' &&
    typeof e.stack === 'string'
  );
}

/** The body of POST /error and /init/error: errorType, errorMessage, trace. */
function errorBody(error) {
  try {
    if (util.types.isNativeError(error) || looksLikeError(error)) {
      return {
        errorType: error.name,
        errorMessage: error.message,
        trace: String(error.stack).split('\n'),
      };
    }
    return { errorType: typeof error, errorMessage: String(error), trace: [] };
  } catch (_) {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

/** An error as Lambda logs it: a tab, then JSON with its enumerable fields. */
function formatErrorForLog(error) {
  const replacer = (_key, value) => {
    if (!(value instanceof Error)) return value;
    const out = Object.assign(
      { errorType: value.name, errorMessage: value.message, code: value.code },
      value,
    );
    if (typeof value.stack === 'string') out.stack = value.stack.split('\n');
    return out;
  };
  try {
    return '\t' + JSON.stringify(error, replacer);
  } catch (_) {
    return '\t' + JSON.stringify(errorBody(error));
  }
}

// ---------------------------------------------------------------------------
// console, in Lambda's text format: `<ISO time>\t<request id>\t<LEVEL>\t<msg>`

let currentRequestId; // `undefined` during init, as Lambda prints it

function patchConsole() {
  const levels = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'];
  const wanted = levels.indexOf((process.env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase());
  const minimum = wanted < 0 ? 0 : wanted;
  const logger = (level) => {
    if (levels.indexOf(level) < minimum && level !== 'FATAL') return () => {};
    return (message, ...params) => {
      const text = util.format(message, ...params).replace(/\n/g, '\r');
      process.stdout.write(`${new Date().toISOString()}\t${currentRequestId}\t${level}\t${text}\n`);
    };
  };
  console.trace = logger('TRACE');
  console.debug = logger('DEBUG');
  console.info = logger('INFO');
  console.log = console.info;
  console.warn = logger('WARN');
  console.error = logger('ERROR');
  console.fatal = logger('FATAL');
}

function logError(label, error) {
  console.error(label, formatErrorForLog(error instanceof Error ? error : new Error(error)));
}

// ---------------------------------------------------------------------------
// The Runtime API connection
//
// A small HTTP/1.1 client over one `net` socket rather than `http`, whose
// modules add about 13 ms to every cold start (68 ms to 81 ms to the first
// GET /next on the machine we measured). One keep-alive connection with
// TCP_NODELAY, each request in one write, one request at a time. The socket is
// unref'd while idle so that, as on Lambda, an invocation that leaves nothing
// pending empties the event loop (see `onEmptyEventLoop`).

class RuntimeApiConnection {
  constructor(address) {
    const colon = address.lastIndexOf(':');
    this.hostHeader = address;
    this.host = address.slice(0, colon).replace(/^\[|\]$/g, '');
    this.port = Number(address.slice(colon + 1));
    this.socket = null;
    this.requestsOnSocket = 0;
    this.buf = null; // received bytes not yet consumed, once joined
    this.chunks = []; // received after `buf`, not yet joined
    this.received = 0; // bytes in `buf` and `chunks`
    this.current = null; // the request being answered
    this.queue = [];
  }

  /** Resolves to { status, headers (lower-case names), body (Buffer) }. */
  request(method, urlPath, body, headers) {
    let head = `${method} ${urlPath} HTTP/1.1\r\nHost: ${this.hostHeader}\r\n`;
    if (body !== undefined) {
      head += `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
    }
    for (const name of Object.keys(headers || {})) head += `${name}: ${headers[name]}\r\n`;
    const message = head + '\r\n' + (body === undefined ? '' : body);
    return new Promise((resolve, reject) => {
      this.queue.push({ message, resolve, reject, retried: false, label: `${method} ${urlPath}` });
      if (!this.current) this.sendNext();
    });
  }

  sendNext() {
    this.current = this.queue.shift() || null;
    if (!this.current) {
      if (this.socket) this.socket.unref();
      return;
    }
    if (!this.socket) this.connect();
    this.socket.ref();
    this.current.reused = this.requestsOnSocket > 0;
    this.requestsOnSocket += 1;
    this.socket.write(this.current.message, 'utf8');
  }

  connect() {
    const socket = net.connect({ host: this.host, port: this.port, noDelay: true });
    socket.setNoDelay(true);
    this.socket = socket;
    this.requestsOnSocket = 0;
    this.buf = Buffer.alloc(0);
    this.chunks = [];
    this.received = 0;
    socket.on('data', (chunk) => {
      // Chunks are joined only when a whole response may be there: joining
      // on every read would copy a 6 MB event a hundred times.
      this.chunks.push(chunk);
      this.received += chunk.length;
      this.parse();
    });
    socket.on('error', (error) => this.lost(socket, error));
    socket.on('close', () => this.lost(socket, new Error('connection closed by the Runtime API')));
  }

  /** The socket went away: resend the current request once if the server
   * closed an idle connection before answering it (the keep-alive race). */
  lost(socket, error) {
    if (socket !== this.socket) return;
    const untilClose = this.current && this.current.untilClose;
    this.socket = null;
    socket.destroy();
    const current = this.current;
    if (!current) return;
    if (untilClose) return this.complete(untilClose.status, untilClose.headers, this.joined());
    if (current.reused && !current.retried && this.received === 0) {
      current.retried = true;
      this.queue.unshift(current);
      return this.sendNext();
    }
    this.current = null;
    current.reject(new Error(`${current.label}: ${error.message}`));
    this.sendNext();
  }

  joined() {
    if (this.chunks.length) {
      this.buf = Buffer.concat([this.buf, ...this.chunks]);
      this.chunks = [];
    }
    return this.buf;
  }

  parse() {
    const current = this.current;
    if (!current || current.untilClose) return;
    if (!current.head) {
      const end = this.joined().indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = this.buf.toString('utf8', 0, end).split('\r\n');
      const headers = {};
      for (let i = 1; i < lines.length; i++) {
        const colon = lines[i].indexOf(':');
        headers[lines[i].slice(0, colon).trim().toLowerCase()] = lines[i].slice(colon + 1).trim();
      }
      current.head = { status: Number(lines[0].split(' ')[1]), headers, bodyStart: end + 4 };
    }
    const { status, headers, bodyStart } = current.head;
    if (status < 200 || status === 204 || status === 304) return this.complete(status, headers, Buffer.alloc(0), 0);
    if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length']);
      if (this.received - bodyStart < length) return;
      return this.complete(status, headers, this.joined().subarray(bodyStart, bodyStart + length), length);
    }
    if ((headers['transfer-encoding'] || '').toLowerCase() === 'chunked') {
      const decoded = decodeChunked(this.joined().subarray(bodyStart));
      if (decoded) this.complete(status, headers, decoded.body, decoded.used);
      return;
    }
    // Neither length nor chunks: the body ends with the connection.
    headers.connection = 'close';
    current.untilClose = { status, headers };
    this.buf = this.joined().subarray(bodyStart);
    this.received = this.buf.length;
  }

  /** Hands `body` to the current request; `used` bytes after the head were
   * consumed (undefined: everything received). */
  complete(status, headers, body, used) {
    const current = this.current;
    if (used === undefined) {
      this.buf = Buffer.alloc(0);
    } else {
      this.buf = this.joined().subarray(current.head.bodyStart + used);
    }
    this.received = this.buf.length;
    if ((headers.connection || '').toLowerCase() === 'close' && this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.destroy();
    }
    this.current = null;
    current.resolve({ status, headers, body });
    this.sendNext();
  }

  close() {
    if (this.socket) this.socket.destroy();
    this.socket = null;
  }
}

/** A chunked body, if complete: { body, used } (bytes consumed). */
function decodeChunked(data) {
  const parts = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd < 0) return null;
    const size = parseInt(data.toString('latin1', at, lineEnd).split(';')[0], 16);
    at = lineEnd + 2;
    if (size === 0) {
      // Trailers, up to an empty line.
      for (;;) {
        const trailerEnd = data.indexOf('\r\n', at);
        if (trailerEnd < 0) return null;
        const empty = trailerEnd === at;
        at = trailerEnd + 2;
        if (empty) return { body: Buffer.concat(parts), used: at };
      }
    }
    if (data.length < at + size + 2) return null;
    parts.push(data.subarray(at, at + size));
    at += size + 2;
  }
}

class RuntimeApi {
  constructor(address) {
    this.address = address;
    this.connection = new RuntimeApiConnection(address);
  }

  async next() {
    const res = await this.connection.request('GET', `${API_PREFIX}/invocation/next`);
    if (res.status !== 200) {
      throw new Error(`GET /invocation/next: HTTP ${res.status}: ${res.body.toString().slice(0, 200)}`);
    }
    return { headers: res.headers, body: res.body.toString('utf8') };
  }

  /** A `fresh` request gets its own connection: errors reported from an
   * uncaught exception must not wait behind a pending GET /next. */
  async post(urlPath, body, headers, fresh) {
    const connection = fresh ? new RuntimeApiConnection(this.address) : this.connection;
    const res = await connection.request('POST', urlPath, body, headers);
    if (fresh) connection.close();
    const text = () => res.body.toString().slice(0, 200);
    if (res.status >= 500) throw new Error(`POST ${urlPath}: HTTP ${res.status}: ${text()}`);
    if (res.status >= 300) process.stderr.write(`floe runtime: POST ${urlPath}: HTTP ${res.status}: ${text()}\n`);
  }

  postResponse(id, body) {
    return this.post(`${API_PREFIX}/invocation/${encodeURIComponent(id)}/response`, body);
  }

  postError(id, error, fresh) {
    return this.post(
      `${API_PREFIX}/invocation/${encodeURIComponent(id)}/error`,
      JSON.stringify(errorBody(error)),
      {},
      fresh,
    );
  }

  postInitError(error, fresh) {
    const body = errorBody(error);
    return this.post(
      `${API_PREFIX}/init/error`,
      JSON.stringify(body),
      { [ERROR_TYPE_HEADER]: body.errorType },
      fresh,
    );
  }
}

function fatal(error) {
  process.stderr.write(`floe runtime: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
}

// ---------------------------------------------------------------------------
// Init: finding the handler, in the order Lambda's Node.js runtime uses

function nearestPackageIsModule(dir) {
  for (;;) {
    if (dir.endsWith('/node_modules')) return false;
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest)) {
      try {
        return JSON.parse(fs.readFileSync(manifest, 'utf8')).type === 'module';
      } catch (e) {
        console.warn(`${manifest} cannot be read, it will be ignored for ES module detection purposes.`, e);
        return false;
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) return false;
    dir = parent;
  }
}

function importFile(file) {
  return import(require('url').pathToFileURL(file).href);
}

async function loadModule(taskRoot, moduleRoot, moduleName) {
  const base = path.resolve(taskRoot, moduleRoot, moduleName);
  if (fs.existsSync(base)) return require(base);
  const jsIsModule = fs.existsSync(base + '.js') && nearestPackageIsModule(path.dirname(base + '.js'));
  if (fs.existsSync(base + '.js')) {
    return jsIsModule ? importFile(base + '.js') : require(base + '.js');
  }
  if (fs.existsSync(base + '.mjs')) return importFile(base + '.mjs');
  if (fs.existsSync(base + '.cjs')) return require(base + '.cjs');
  // Node's own resolution from the task root: packages, directories.
  return require(require.resolve(moduleName, { paths: [taskRoot, moduleRoot] }));
}

async function loadHandler(taskRoot, fullName) {
  if (fullName.includes('..')) {
    throw new MalformedHandlerName(
      `'${fullName}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const handlerString = path.basename(fullName);
  const moduleRoot = fullName.slice(0, fullName.indexOf(handlerString));
  const match = handlerString.match(/^([^.]*)\.(.*)$/);
  if (!match) throw new MalformedHandlerName('Bad handler');
  const [, moduleName, propertyPath] = match;

  let userModule;
  try {
    userModule = await loadModule(taskRoot, moduleRoot, moduleName);
  } catch (e) {
    if (e instanceof SyntaxError) throw new UserCodeSyntaxError(e);
    if (e && e.code === 'MODULE_NOT_FOUND') throw new ImportModuleError(e);
    throw e;
  }
  const handler = propertyPath.split('.').reduce((object, key) => object && object[key], userModule);
  if (!handler) throw new HandlerNotFound(`${fullName} is undefined or not exported`);
  if (typeof handler !== 'function') throw new HandlerNotFound(`${fullName} is not a function`);
  return handler;
}

// ---------------------------------------------------------------------------
// Invocations

function parseJsonHeader(value, name) {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (e) {
    throw new Error(`Cannot parse ${name} as json: ${e.toString()}`);
  }
}

/** What runs when the event loop empties; replaced per invocation. */
let onEmptyEventLoop = () => {};
/** What an uncaught exception or unhandled rejection reports, and where. */
let reportFatal = (error, status) => api.postInitError(error, true).then(() => process.exit(status), fatal);

class Invocation {
  constructor(api, handler, next) {
    this.api = api;
    this.handler = handler;
    this.headers = next.headers;
    this.body = next.body;
    this.id = next.headers['lambda-runtime-aws-request-id'];
    this.finished = false;
    this.waitsForEmptyEventLoop = true;
  }

  /** Posts the result or the error once, then starts the next invocation. */
  finish(error, result) {
    if (this.finished) return;
    this.finished = true;
    onEmptyEventLoop = () => {};
    let posting;
    if (error !== undefined && error !== null) {
      logError('Invoke Error', error);
      posting = this.api.postError(this.id, error);
    } else {
      let body;
      try {
        body = JSON.stringify(result === undefined ? null : result);
        if (body === undefined) body = 'null'; // a function or a symbol
      } catch (_) {
        this.finished = false;
        return this.finish(new Error('Unable to stringify response body'));
      }
      posting = this.api.postResponse(this.id, body);
    }
    posting.then(() => setImmediate(loop), fatal);
  }

  context() {
    const invocation = this;
    const headers = this.headers;
    const deadline = Number(headers['lambda-runtime-deadline-ms']);
    const env = process.env;
    const done = (error, result) => invocation.finish(error, result);
    return {
      get callbackWaitsForEmptyEventLoop() {
        return invocation.waitsForEmptyEventLoop;
      },
      set callbackWaitsForEmptyEventLoop(value) {
        invocation.waitsForEmptyEventLoop = value;
      },
      succeed: (result) => done(null, result),
      fail: (error) => done(error === undefined || error === null ? 'handled' : error, null),
      done,
      functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
      functionName: env.AWS_LAMBDA_FUNCTION_NAME,
      memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
      clientContext: parseJsonHeader(headers['lambda-runtime-client-context'], 'ClientContext'),
      identity: parseJsonHeader(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity'),
      invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
      awsRequestId: this.id,
      tenantId: headers['lambda-runtime-aws-tenant-id'],
      getRemainingTimeInMillis: () => deadline - Date.now(),
    };
  }

  /** The callback of callback-style handlers: by default the response waits
   * until the event loop is empty, as on Lambda. */
  callback() {
    let called = false;
    return (error, result) => {
      if (called || this.finished) return;
      called = true;
      if ((error !== undefined && error !== null) || !this.waitsForEmptyEventLoop) {
        this.finish(error, result);
      } else {
        onEmptyEventLoop = () => setImmediate(() => this.finish(null, result));
      }
    };
  }

  run() {
    currentRequestId = this.id;
    const trace = this.headers['lambda-runtime-trace-id'];
    if (trace) process.env._X_AMZN_TRACE_ID = trace;
    else delete process.env._X_AMZN_TRACE_ID;

    reportFatal = (error, status) => {
      this.finished = true;
      this.api.postError(this.id, error, true).then(() => process.exit(status), fatal);
    };
    // A handler that never answers: an async one failed to settle its promise,
    // a callback one forgot its callback (which Lambda answers with null).
    onEmptyEventLoop = () => {
      if (this.handler.constructor.name === 'AsyncFunction') {
        const error = new NodeJsExit(NODEJS_EXIT_MESSAGE);
        this.finish(error);
      } else {
        this.finish(null, null);
      }
    };

    try {
      const context = this.context();
      const result = this.handler(JSON.parse(this.body), context, this.callback());
      if (result && typeof result.then === 'function') {
        result.then(
          (value) => this.finish(null, value),
          (error) => this.finish(error === undefined || error === null ? 'handled' : error, null),
        );
      }
    } catch (error) {
      this.finish(error);
    }
  }
}

let api;
let userHandler;

function loop() {
  api.next().then((next) => new Invocation(api, userHandler, next).run(), fatal);
}

async function main() {
  patchConsole();
  api = new RuntimeApi(process.env.AWS_LAMBDA_RUNTIME_API || '127.0.0.1:9001');

  process.on('uncaughtException', (error) => {
    logError('Uncaught Exception', error);
    reportFatal(error, EXIT_UNCAUGHT_EXCEPTION);
  });
  process.on('unhandledRejection', (reason) => {
    const error = new UnhandledPromiseRejection(reason);
    error.reason = reason;
    logError('Unhandled Promise Rejection', error);
    reportFatal(error, EXIT_UNHANDLED_REJECTION);
  });
  process.on('beforeExit', () => onEmptyEventLoop());

  const taskRoot = process.env.LAMBDA_TASK_ROOT || process.cwd();
  const handlerName = process.argv[2] || process.env._HANDLER || '';
  try {
    userHandler = await loadHandler(taskRoot, handlerName);
  } catch (error) {
    logError('Uncaught Exception', error);
    await api.postInitError(error).catch(fatal);
    process.exit(EXIT_UNCAUGHT_EXCEPTION);
  }
  loop();
}

main();
