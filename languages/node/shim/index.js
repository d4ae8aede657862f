// kiln's server for OpenFaaS Node functions (node18, node20, node22).
//
// It serves ./function/handler.js, a function (event, context[, callback])
// that may be async, on Node's own http module, with the behaviour the
// OpenFaaS node templates give their users through Express: the same event
// and context objects, body parsing by content type, and the same way of
// turning a result into a response. Where Express 4 (node18, node20) and
// Express 5 (node22) differ, the running Node's major version decides.
//
// Deliberate differences: a handler that throws, or whose promise
// rejects, answers 500 (or the status it set) as fail() does, where the
// templates answer 200 with the error text; and an answer Node refuses to
// send (a status outside 100-999) becomes a 500, where the templates'
// process crashes.
'use strict';

const crypto = require('crypto');
const http = require('http');
const querystring = require('querystring');
const { StringDecoder } = require('string_decoder');
const zlib = require('zlib');

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

// inflater returns a stream that decodes a Content-Encoding body-parser
// inflates (brotli only from body-parser 2, Express 5), or undefined.
function inflater(encoding) {
  switch (encoding) {
    case 'gzip':
      return zlib.createGunzip();
    case 'deflate':
      return zlib.createInflate();
    case 'br':
      return express5 ? zlib.createBrotliDecompress() : undefined;
  }
  return undefined;
}

// readBody collects the request body, inflated as its Content-Encoding
// says, refusing more than limit bytes. As in raw-body, the limit counts
// inflated bytes, and Content-Length is checked against it up front only
// when the body is not encoded.
function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const encoding = String(req.headers['content-encoding'] || 'identity').toLowerCase();
    let body = req;
    if (encoding === 'identity') {
      const declared = Number(req.headers['content-length']);
      if (!isNaN(declared) && declared > limit) {
        req.resume();
        reject(new HTTPError(413, 'PayloadTooLargeError', 'request entity too large'));
        return;
      }
    } else {
      body = inflater(encoding);
      if (!body) {
        req.resume();
        reject(new HTTPError(415, 'UnsupportedMediaTypeError', `unsupported content encoding "${encoding}"`));
        return;
      }
      req.pipe(body);
    }
    const chunks = [];
    let size = 0;
    let failed = false;
    const fail = (err) => {
      if (failed) {
        return;
      }
      failed = true;
      if (body !== req) {
        // Stop inflating, and drain what the client still sends.
        req.unpipe(body);
        body.destroy();
        req.resume();
      }
      reject(err);
    };
    body.on('data', (chunk) => {
      if (failed) {
        return;
      }
      size += chunk.length;
      if (size > limit) {
        fail(new HTTPError(413, 'PayloadTooLargeError', 'request entity too large'));
        return;
      }
      chunks.push(chunk);
    });
    body.on('end', () => failed || resolve(Buffer.concat(chunks)));
    req.on('error', (err) => fail(new HTTPError(400, 'BadRequestError', err.message)));
    if (body !== req) {
      // A corrupt or truncated body: zlib's message, as body-parser shows it.
      body.on('error', (err) => fail(new HTTPError(400, 'Error', err.message)));
    }
  });
}

// Bytes 0x80-0x9f of windows-1252, as iconv-lite maps them (U+FFFD where
// the code page defines nothing). Node's TextDecoder can't be trusted with
// this range: since 20.18.3 and 22.13.0 it decodes windows-1252 as latin1
// (nodejs/node#56542).
const cp1252 = '€\ufffd‚ƒ„…†‡ˆ‰Š‹Œ\ufffdŽ\ufffd\ufffd‘’“”•–—˜™š›œ\ufffdžŸ';

function stripBOM(s) {
  return s.charCodeAt(0) === 0xfeff ? s.slice(1) : s;
}

const latin1 = (buf) => buf.toString('latin1');
const windows1252 = (buf) => latin1(buf).replace(/[\x80-\x9f]/g, (c) => cp1252[c.charCodeAt(0) - 0x80]);
const ascii = (buf) => latin1(buf).replace(/[\x80-\xff]/g, '\ufffd');
const utf8 = (buf) => stripBOM(buf.toString('utf8'));
// UTF-16 code units are taken as they are (lone surrogates kept, not
// U+FFFD as TextDecoder has them), and an odd last byte is dropped.
const utf16 = (bigEndian) => (buf) => {
  const units = Buffer.from(buf.subarray(0, buf.length & ~1));
  return stripBOM((bigEndian ? units.swap16() : units).toString('utf16le'));
};
const utf16le = utf16(false);
const utf16be = utf16(true);

// utf16bom reads "utf-16" as iconv-lite does: a BOM gives the byte order;
// without one, the order that reads more of the first code units as
// ASCII wins, little-endian on a tie. iconv-lite 0.4 (body-parser 1)
// looks at 32 units, 0.7 (body-parser 2) at 100.
function utf16bom(buf) {
  if (buf[0] === 0xfe && buf[1] === 0xff) {
    return utf16be(buf);
  }
  if (buf[0] === 0xff && buf[1] === 0xfe) {
    return utf16le(buf);
  }
  let asciiBE = 0;
  let asciiLE = 0;
  for (let i = 0; i + 1 < Math.min(buf.length, express5 ? 200 : 64); i += 2) {
    asciiBE += buf[i] === 0 && buf[i + 1] !== 0;
    asciiLE += buf[i] !== 0 && buf[i + 1] === 0;
  }
  return asciiBE > asciiLE ? utf16be(buf) : utf16le(buf);
}
const internal = (enc) => (buf) => new StringDecoder(enc).end(buf);

// charsets holds the decoders for the charsets a client is likely to name,
// by iconv-lite's canonical name, decoding as iconv-lite does: Buffer's
// latin1 is ISO-8859-1 proper (0x80-0x9f are C1 controls, not
// windows-1252 as the WHATWG Encoding spec has it), ASCII gives U+FFFD for
// bytes above 0x7f, and a BOM is dropped in UTF-8 and UTF-16.
const charsets = new Map([
  ['utf8', utf8],
  ['utf16', utf16bom], ['utf16le', utf16le], ['ucs2', utf16le], ['utf16be', utf16be],
  ['iso88591', latin1], ['latin1', latin1], ['l1', latin1], ['binary', latin1],
  ['windows1252', windows1252], ['win1252', windows1252], ['cp1252', windows1252],
  ['ascii', ascii], ['usascii', ascii],
  ['base64', internal('base64')], ['hex', internal('hex')],
]);

// decoder returns the function that turns a body in charset into a string,
// as body-parser does with iconv-lite, or throws 415. Charsets not in
// charsets are left to TextDecoder (Node's builds carry full ICU), which
// decodes valid text as iconv-lite does, save WHATWG's remappings
// (iso-8859-9 is windows-1254 there).
function decoder(charset) {
  const name = charset || 'utf-8';
  const known = charsets.get(name.replace(/:\d{4}$|[^0-9a-z]/g, ''));
  if (known) {
    return known;
  }
  try {
    const d = new TextDecoder(name);
    return (buf) => d.decode(buf);
  } catch {
    throw new HTTPError(415, 'UnsupportedMediaTypeError', `unsupported charset "${name.toUpperCase()}"`);
  }
}

// parseQuery parses a query or urlencoded body: nested, as the qs module
// does for Express 4's query (Express 4.22 sets arrayLimit 1000; depth 5)
// and for extended urlencoded bodies, or flat, as Express 5's default
// query parser does.
// Nested parsing follows qs.parse: values of a repeated key are combined,
// each key is split into its brackets and built into an object, the
// objects are merged, and arrays are compacted.
function parseQuery(text, nested, { arrayLimit = 1000, depth = 5, strictDepth = false } = {}) {
  if (!nested) {
    return Object.assign({}, querystring.parse(text));
  }
  const values = Object.create(null);
  for (const part of text.split('&', 1000)) {
    // "a[=]=1" names the key "a[=]", as in qs.
    const bracketEq = part.indexOf(']=');
    const eq = bracketEq < 0 ? part.indexOf('=') : bracketEq + 1;
    const key = unescape(eq < 0 ? part : part.slice(0, eq));
    const value = eq < 0 ? '' : unescape(part.slice(eq + 1));
    values[key] = key in values ? [].concat(values[key], value) : value;
  }
  let out = {};
  for (const key of Object.keys(values)) {
    if (key !== '') {
      out = merge(out, build(splitKey(key, depth, strictDepth), values[key], arrayLimit));
    }
  }
  return compact(out);
}

// splitKey splits "a[b][c]" into ["a", "[b]", "[c]"]; what lies past depth
// brackets stays one segment, or is refused if strictDepth.
function splitKey(key, depth, strictDepth) {
  const brackets = /\[[^[\]]*\]/g;
  let m = brackets.exec(key);
  const parent = m ? key.slice(0, m.index) : key;
  const chain = parent ? [parent] : [];
  for (let i = 0; m && i < depth; i++) {
    chain.push(m[0]);
    m = brackets.exec(key);
  }
  if (m) {
    if (strictDepth) {
      throw new HTTPError(400, 'BadRequestError', 'The input exceeded the depth');
    }
    chain.push(`[${key.slice(m.index)}]`);
  }
  return chain;
}

// build nests value under the segments of a key. An index segment below
// arrayLimit makes an array, sparse until compact() closes the gaps, as in
// qs 6.14.1 and later, which a fresh install of the node20 template (no
// lockfile, express ^4) gets today.
function build(chain, value, arrayLimit) {
  let leaf = value;
  for (let i = chain.length - 1; i >= 0; i--) {
    const root = chain[i];
    let node;
    if (root === '[]') {
      node = [].concat(leaf);
    } else {
      const name = root.startsWith('[') && root.endsWith(']') ? root.slice(1, -1) : root;
      const index = parseInt(name, 10);
      if (root !== name && String(index) === name && index >= 0 && index < arrayLimit) {
        node = [];
        node[index] = leaf;
      } else {
        node = {};
        if (name !== '__proto__') {
          node[name] = leaf;
        }
      }
    }
    leaf = node;
  }
  return leaf;
}

// merge is qs's utils.merge: arrays merge by index, an array meeting an
// object becomes an object, and a plain value meeting either is added.
function merge(target, source) {
  if (!source) {
    return target;
  }
  if (typeof source !== 'object') {
    if (Array.isArray(target)) {
      target.push(source);
    } else if (target && typeof target === 'object') {
      target[source] = true;
    } else {
      return [target, source];
    }
    return target;
  }
  if (!target || typeof target !== 'object') {
    return [target].concat(source);
  }
  if (Array.isArray(target) && Array.isArray(source)) {
    source.forEach((item, i) => {
      if (!Object.hasOwn(target, i)) {
        target[i] = item;
      } else if (target[i] && typeof target[i] === 'object' && item && typeof item === 'object') {
        target[i] = merge(target[i], item);
      } else {
        target.push(item);
      }
    });
    return target;
  }
  const into = Array.isArray(target) ? Object.assign({}, target) : target;
  for (const [key, value] of Object.entries(source)) {
    into[key] = Object.hasOwn(into, key) ? merge(into[key], value) : value;
  }
  return into;
}

// compact drops the holes sparse index keys leave in arrays.
function compact(value) {
  if (Array.isArray(value)) {
    return value.filter(() => true).map(compact);
  }
  if (value && typeof value === 'object') {
    for (const key of Object.keys(value)) {
      value[key] = compact(value[key]);
    }
  }
  return value;
}

// unescape decodes as qs does: "+" is a space even where a bad percent
// escape leaves the rest undecoded.
function unescape(s) {
  const spaced = s.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(spaced);
  } catch {
    return spaced;
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
    const decode = decoder(charset);
    return decode(await readBody(req, defaultLimit));
  }
  if (type === 'application/json') {
    if (charset && !charset.startsWith('utf-')) {
      throw new HTTPError(415, 'UnsupportedMediaTypeError', `unsupported charset "${charset.toUpperCase()}"`);
    }
    const decode = decoder(charset);
    const text = decode(await readBody(req, jsonLimit));
    if (text.length === 0) {
      return {};
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
    // body-parser 1 takes only UTF-8 here. (body-parser 2 also takes
    // ISO-8859-1, decoding percent escapes as latin1; not done here.)
    if (charset && charset !== 'utf-8') {
      throw new HTTPError(415, 'UnsupportedMediaTypeError', `unsupported charset "${charset.toUpperCase()}"`);
    }
    const text = utf8(await readBody(req, defaultLimit));
    // body-parser's extended parser: at most 1000 parameters, counted as
    // the ampersands plus one, an index limit of at least 100, and at most
    // 32 levels of brackets (qs's strictDepth).
    const params = text.split('&').length;
    if (params > 1000) {
      throw new HTTPError(413, 'PayloadTooLargeError', 'too many parameters');
    }
    return parseQuery(text, true, { arrayLimit: Math.max(100, params), depth: 32, strictDepth: true });
  }
  req.resume();
  return empty;
}

class FunctionEvent {
  constructor(req, target, body) {
    this.body = body;
    this.headers = req.headers;
    this.method = req.method;
    this.query = parseQuery(target.query, !express5);
    this.path = target.path;
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
// type was set, Buffers (in Express 5 any ArrayBuffer view, through
// Buffer.from) as octets, other values as JSON.
function send(req, res, status, headers, value) {
  for (const [name, v] of Object.entries(headers || {})) {
    if (v === undefined) {
      continue;
    }
    if (Array.isArray(v) && name.toLowerCase() === 'content-type') {
      throw new TypeError('Content-Type cannot be set to an Array');
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
  } else if (Buffer.isBuffer(body) || (express5 && ArrayBuffer.isView(body))) {
    if (!res.hasHeader('content-type')) {
      res.setHeader('Content-Type', 'application/octet-stream');
    }
    chunk = Buffer.isBuffer(body) ? body : Buffer.from(body);
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
  if (status === 205) {
    // Express keeps the type and ETag, but sends no body.
    res.setHeader('Content-Length', '0');
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

// requestTarget splits req.url as Express's parseurl does: the path exactly
// as sent (not resolved against a base URL, which would read "//host/..."
// as an authority and drop dot segments) and the raw query string. An
// absolute-form target loses its scheme and authority.
function requestTarget(url) {
  const m = /^(?:[a-z][a-z\d+.-]*:\/\/[^/?#]*)?([^?#]*)(?:\?([^#]*))?/i.exec(url);
  return { path: m[1] || '/', query: m[2] || '' };
}

function serve(handler) {
  return async (req, res) => {
    const target = requestTarget(req.url);
    if (!express5 && !routed.has(req.method)) {
      req.resume();
      sendError(req, res, 404, `Cannot ${req.method} ${target.path}`);
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
        // Only a truthy error takes the error path, as in the templates:
        // fail(null) or fail() answers with the status fail() set (500
        // unless another was set) and the context's headers.
        if (err) {
          console.error(err);
          send(req, res, Number(context.status()), {}, err && err.toString ? err.toString() : err);
          return;
        }
        const value2 = Array.isArray(value) || (value && value.constructor === Object) ? JSON.stringify(value) : value;
        send(req, res, Number(context.status()), context.headers(), value2);
      } catch (sendErr) {
        console.error(sendErr);
        if (!res.headersSent) {
          // Headers send() set before it threw, a Content-Length above all,
          // would misframe this answer and so the next on the connection.
          for (const name of res.getHeaderNames()) {
            res.removeHeader(name);
          }
          send(req, res, 500, {}, String(sendErr));
        }
      }
    });
    const callback = (err, value) => (err ? context.fail(err) : context.succeed(value));
    const event = new FunctionEvent(req, target, body);
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
