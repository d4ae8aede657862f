// kiln's entry point for functions of OpenFaaS's classic node template
// (lang node), written from its contract: the classic watchdog starts
// "node index.js" once per request, with the request body on stdin; the
// handler's answer, written to stdout, is the response body, and what goes
// to stderr is in it too (combine_output).
//
// function/handler.js exports (context, callback): context is the body as
// a string. The handler answers by calling callback(err, result) or by
// returning a promise of the result. A result that is an array or a plain
// object is printed as JSON with a newline; any other is written as it is
// (a string or a Buffer; other values through String()); an empty result
// writes nothing. An error is written to stderr, and the process still
// exits 0, so the watchdog answers 200 with it, as under the template.
'use strict';

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on('data', (chunk) => chunks.push(chunk));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
}

function isPlainObject(value) {
  return !!value && value.constructor === Object;
}

function write(err, result) {
  if (err) {
    console.error(err);
    return;
  }
  if (!result) {
    return;
  }
  if (Array.isArray(result) || isPlainObject(result)) {
    process.stdout.write(JSON.stringify(result) + '\n');
  } else if (typeof result === 'string' || Buffer.isBuffer(result)) {
    process.stdout.write(result);
  } else {
    process.stdout.write(String(result));
  }
}

async function main() {
  const handler = require('./function/handler');
  const content = await readStdin();
  let answered = false;
  const callback = (err, result) => {
    if (answered) {
      return;
    }
    answered = true;
    write(err, result);
  };
  const result = handler(content, callback);
  if (result && typeof result.then === 'function') {
    result.then((value) => callback(undefined, value), (err) => callback(err));
  }
}

if (require.main === module) {
  main().catch((err) => console.error(err && err.stack ? err.stack : err));
}

module.exports = { write };
