// kiln's server for OpenFaaS Node functions (node18, node20, node22).
//
// It serves ./function/handler.js, a function (event, context[, callback])
// that may be async, on Node's own http module, with the behaviour the
// OpenFaaS node templates give their users through Express: the same event
// and context objects, body parsing by content type, and the same way of
// turning a result into a response. Where Express 4 (node18, node20) and
// Express 5 (node22) differ, the running Node's major version decides.
//
// One deliberate difference: a handler that throws, or whose promise
// rejects, answers 500 (or the status it set) as fail() does, where the
// templates answer 200 with the error text.
'use strict';

const crypto = require('crypto');
const http = require('http');
const querystring = require('querystring');
const { StringDecoder } = require('string_decoder');

const express5 = Number(process.versions.node.split('.')[0]) >= 22;

// Express 4 routes these methods on /*; app.get also answers HEAD.
// Express 5 (app.use) takes every method.
const routed = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

// parseSize reads a body-parser limit: a byte count or "100kb", "1mb", ...
function parseSize(value, fallback) {
  if (value === undefined || value === '') {
    return fallback;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb|pb)?\s*$/i.exec(String(value));
  if (!m) {
    return fallback;
  }
  const units = { b: 1, kb: 1 << 10, mb: 1 << 20, gb: 1 << 30, tb: 2 ** 40, pb: 2 ** 50 };
  return Math.floor(Number(m[1]) * units[(m[2] || 'b').toLowerCase()]);
}

const defaultLimit = 100 * 1024;
const rawBody = process.env.RAW_BODY === 'true';
const rawLimit = parseSize(process.env.MAX_RAW_SIZE, defaultLimit);
const jsonLimit = parseSize(process.env.MAX_JSON_SIZE, defaultLimit);

class HTTPError extends Error {
  constructor(status, name, message) {
    super(message);
    this.status = status;
    this.name = name;
  }
}

// mediaType splits a Content-Type into its lower-case type and charset.
function mediaType(header) {
  const parts = String(header || '').split(';');
  const type = parts[0].trim().toLowerCase();
  let charset = '';
  for (const p of parts.slice(1)) {
    const [k, v] = p.split('=');
    if (k && v && k.trim().toLowerCase() === 'charset') {
      charset = v.trim().replace(/^"|"$/g, '').toLowerCase();
    }
  }
  return { type, charset };
}

function hasBody(req) {
  return req.headers['transfer-encoding'] !== undefined || !isNaN(req.headers['content-length']);
}

// readBody collects the request body, refusing more than limit bytes.
function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (!isNaN(declared) && declared > limit) {
      req.resume();
      reject(new HTTPError(413, 'PayloadTooLargeError', 'request entity too large'));
      return;
    }
    const chunks = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk) => {
      if (failed) {
        return;
      }
      size += chunk.length;
      if (size > limit) {
        failed = true;
        reject(new HTTPError(413, 'PayloadTooLargeError', 'request entity too large'));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => failed || resolve(Buffer.concat(chunks)));
    req.on('error', (err) => failed || reject(new HTTPError(400, 'BadRequestError', err.message)));
  });
}

function decode(buf, charset) {
  const enc = charset || 'utf-8';
  if (!Buffer.isEncoding(enc)) {
    throw new HTTPError(415, 'UnsupportedMediaTypeError', `unsupported charset "${enc.toUpperCase()}"`);
  }
  return new StringDecoder(enc).end(buf);
}

// setPath stores value under a key with qs-style brackets: a[b][]=1.
function setPath(target, key, value) {
  const m = /^([^[\]]*)((?:\[[^[\]]*\])*)$/.exec(key);
  if (!m || m[1] === '' || m[2] === '') {
    assign(target, key, value);
    return;
  }
  const names = [m[1], ...m[2].slice(1, -1).split('][')];
  let node = target;
  for (let i = 0; i < names.length - 1; i++) {
    const name = names[i];
    const next = names[i + 1];
    if (name === '__proto__' || name === 'constructor' || name === 'prototype') {
      return;
    }
    if (Array.isArray(node) && name === '') {
      const child = next === '' ? [] : {};
      node.push(child);
      node = child;
      continue;
    }
    if (node[name] === undefined || typeof node[name] !== 'object') {
      node[name] = next === '' ? [] : {};
    }
    node = node[name];
  }
  const last = names[names.length - 1];
  if (Array.isArray(node) && (last === '' || /^\d+$/.test(last))) {
    node.push(value);
  } else if (last !== '__proto__') {
    assign(node, last, value);
  }
}

function assign(target, key, value) {
  if (key === '__proto__') {
    return;
  }
  if (Object.prototype.hasOwnProperty.call(target, key)) {
    target[key] = [].concat(target[key], value);
  } else {
    target[key] = value;
  }
}

// parseQuery parses a query or urlencoded body: nested, as the qs module
// does for Express 4 and for extended urlencoded bodies, or flat, as
// Express 5's default query parser does.
function parseQuery(text, nested) {
  if (!nested) {
    return Object.assign({}, querystring.parse(text));
  }
  const out = {};
  let count = 0;
  for (const part of text.split('&')) {
    if (part === '' || ++count > 1000) {
      continue;
    }
    const eq = part.indexOf('=');
    const rawKey = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? '' : part.slice(eq + 1);
    setPath(out, unescape(rawKey), unescape(rawValue));
  }
  return out;
}

function unescape(s) {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

// parseBody returns event.body: what the template's body-parser
// middleware leaves in req.body.
async function parseBody(req) {
  const empty = express5 ? undefined : {};
  if (!hasBody(req)) {
    return empty;
  }
  const { type, charset } = mediaType(req.headers['content-type']);
  if (rawBody) {
    return readBody(req, rawLimit);
  }
  if (type.startsWith('text/')) {
    return decode(await readBody(req, defaultLimit), charset);
  }
  if (type === 'application/json') {
    if (charset && !charset.startsWith('utf-')) {
      throw new HTTPError(415, 'UnsupportedMediaTypeError', `unsupported charset "${charset.toUpperCase()}"`);
    }
    const text = decode(await readBody(req, jsonLimit), charset);
    if (text.length === 0) {
      return express5 ? undefined : {};
    }
    // Strict, as body-parser is by default: only objects and arrays.
    const first = text.trimStart()[0];
    if (first !== '{' && first !== '[') {
      throw new HTTPError(400, 'SyntaxError', `Unexpected token ${JSON.stringify(first || '')} in JSON: not an object or array`);
    }
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new HTTPError(400, 'SyntaxError', err.message);
    }
  }
  if (type === 'application/x-www-form-urlencoded') {
    return parseQuery(decode(await readBody(req, defaultLimit), charset), true);
  }
  req.resume();
  return empty;
}

class FunctionEvent {
  constructor(req, url, body) {
    this.body = body;
    this.headers = req.headers;
    this.method = req.method;
    this.query = parseQuery(url.search.slice(1), !express5);
    this.path = url.pathname;
  }
}

class FunctionContext {
  constructor(done) {
    this.statusCode = 200;
    this.headerValues = {};
    this.done = done;
    this.cbCalled = 0;
  }

  status(code) {
    if (!code) {
      return this.statusCode;
    }
    this.statusCode = code;
    return this;
  }

  headers(values) {
    if (!values) {
      return this.headerValues;
    }
    this.headerValues = values;
    return this;
  }

  succeed(value) {
    this.cbCalled++;
    this.done(undefined, value);
  }

  fail(err) {
    if (Number(this.status()) === 200) {
      this.status(500);
    }
    this.cbCalled++;
    this.done(err);
  }
}

function withCharset(type) {
  const kept = type.split(';').map((p) => p.trim()).filter((p, i) => i === 0 || !/^charset=/i.test(p));
  return [...kept, 'charset=utf-8'].join('; ');
}

function etag(body) {
  const hash = crypto.createHash('sha1').update(body).digest('base64').slice(0, 27);
  return `W/"${body.length.toString(16)}-${hash}"`;
}

// send writes a value as Express's res.send does: strings as HTML unless a
// type was set, Buffers as octets, other values as JSON.
function send(req, res, status, headers, value) {
  for (const [name, v] of Object.entries(headers || {})) {
    if (v === undefined) {
      continue;
    }
    let val = Array.isArray(v) ? v.map(String) : String(v);
    if (name.toLowerCase() === 'content-type' && typeof val === 'string' && /^text\//i.test(val) && !/charset=/i.test(val)) {
      val += '; charset=utf-8';
    }
    res.setHeader(name, val);
  }
  let body = value;
  if (typeof body === 'number' && !express5) {
    // Express 4's res.send(status).
    status = body;
    body = http.STATUS_CODES[status] || String(status);
    if (!res.hasHeader('content-type')) {
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    }
  }
  let chunk;
  if (body === undefined) {
    chunk = undefined;
  } else if (body === null) {
    chunk = Buffer.alloc(0);
  } else if (typeof body === 'string') {
    res.setHeader('Content-Type', withCharset(res.getHeader('content-type') || 'text/html'));
    chunk = Buffer.from(body, 'utf8');
  } else if (Buffer.isBuffer(body)) {
    if (!res.hasHeader('content-type')) {
      res.setHeader('Content-Type', 'application/octet-stream');
    }
    chunk = body;
  } else {
    if (!res.hasHeader('content-type')) {
      res.setHeader('Content-Type', 'application/json; charset=utf-8');
    }
    chunk = Buffer.from(JSON.stringify(body) ?? '', 'utf8');
  }
  if (chunk !== undefined) {
    res.setHeader('Content-Length', chunk.length);
    if (!res.hasHeader('etag')) {
      res.setHeader('ETag', etag(chunk));
    }
  }
  const fresh = (req.method === 'GET' || req.method === 'HEAD') && status >= 200 && status < 300 &&
    req.headers['if-none-match'] !== undefined &&
    req.headers['if-none-match'].split(',').map((s) => s.trim()).some((t) => t === '*' || t.replace(/^W\//, '') === String(res.getHeader('etag')).replace(/^W\//, ''));
  if (fresh) {
    status = 304;
  }
  if (status === 204 || status === 304) {
    res.removeHeader('Content-Type');
    res.removeHeader('Content-Length');
    res.removeHeader('Transfer-Encoding');
    chunk = undefined;
  }
  res.statusCode = status;
  if (req.method === 'HEAD') {
    res.end();
  } else {
    res.end(chunk);
  }
}

// sendError answers as Express's final handler does, in HTML.
function sendError(req, res, status, text) {
  const html = `<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n</head>\n<body>\n<pre>${escapeHTML(text)}</pre>\n</body>\n</html>\n`;
  res.setHeader('Content-Security-Policy', "default-src 'none'");
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(html));
  res.statusCode = status;
  res.end(req.method === 'HEAD' ? undefined : html);
}

function escapeHTML(s) {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

function serve(handler) {
  return async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    if (!express5 && !routed.has(req.method)) {
      req.resume();
      sendError(req, res, 404, `Cannot ${req.method} ${url.pathname}`);
      return;
    }
    if (!req.headers['content-type']) {
      req.headers['content-type'] = 'text/plain';
    }
    let body;
    try {
      body = await parseBody(req);
    } catch (err) {
      sendError(req, res, err.status || 400, `${err.name}: ${err.message}`);
      return;
    }

    let answered = false;
    const context = new FunctionContext((err, value) => {
      if (answered) {
        console.error('the function answered twice; the second answer is dropped');
        return;
      }
      answered = true;
      try {
        if (err !== undefined) {
          console.error(err);
          send(req, res, Number(context.status()), {}, err && err.toString ? err.toString() : err);
          return;
        }
        const value2 = Array.isArray(value) || (value && value.constructor === Object) ? JSON.stringify(value) : value;
        send(req, res, Number(context.status()), context.headers(), value2);
      } catch (sendErr) {
        console.error(sendErr);
        if (!res.headersSent) {
          res.statusCode = 500;
          res.end(String(sendErr));
        }
      }
    });
    const callback = (err, value) => (err ? context.fail(err) : context.succeed(value));
    const event = new FunctionEvent(req, url, body);
    try {
      const result = await handler(event, context, callback);
      if (!context.cbCalled) {
        context.succeed(result);
      }
    } catch (err) {
      if (!answered) {
        context.fail(err);
      }
    }
  };
}

function main() {
  const handler = require('./function/handler');
  if (typeof handler !== 'function') {
    console.error('function/handler.js must export a function: module.exports = async (event, context) => { ... }');
    process.exit(1);
  }
  const port = Number(process.env.http_port || 3000);
  const server = http.createServer(serve(handler));
  server.keepAliveTimeout = 65000;
  server.listen(port, '127.0.0.1', () => {
    console.log(`node${process.versions.node.split('.')[0]} listening on port: ${port}`);
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

if (require.main === module) {
  main();
}

module.exports = { serve, parseSize, parseQuery };
