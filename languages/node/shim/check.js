// kiln's build-time check of a Node function, run by the host's node in a
// copy of the handler folder whose node_modules holds the installed
// dependencies: every .js file must compile as a CommonJS module, and
// handler.js must load and export a function. It prints one JSON object:
// {} when all is well, else {kind, file, line, message, detail}.
'use strict';

const fs = require('fs');
const path = require('path');
const vm = require('vm');

const dir = path.resolve(process.argv[2]);
const params = ['exports', 'require', 'module', '__filename', '__dirname'];

function jsFiles(d) {
  const out = [];
  for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = path.join(d, e.name);
    if (e.isDirectory() && e.name !== 'node_modules' && !e.name.startsWith('.')) {
      out.push(...jsFiles(p));
    } else if (e.isFile() && (e.name.endsWith('.js') || e.name.endsWith('.cjs'))) {
      out.push(p);
    }
  }
  return out;
}

// location reads "file:line" from the first line of a V8 syntax error.
function location(err, file) {
  const first = String(err.stack || '').split('\n')[0];
  const m = /:(\d+)$/.exec(first);
  return { file, line: m ? Number(m[1]) : 0 };
}

function check() {
  const typeModule = (() => {
    try {
      return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).type === 'module';
    } catch {
      return false;
    }
  })();
  for (const file of jsFiles(dir)) {
    if (typeModule && file.endsWith('.js')) {
      continue;
    }
    try {
      vm.compileFunction(fs.readFileSync(file, 'utf8'), params, { filename: file });
    } catch (err) {
      const stack = String(err.stack || err).split('\n');
      const at = stack.findIndex((l) => l.startsWith('    at '));
      return { kind: 'syntax', ...location(err, file), message: `${err.name}: ${err.message}`, detail: stack.slice(0, at < 0 ? undefined : at).join('\n').trim() };
    }
  }
  const handler = path.join(dir, 'handler.js');
  let exported;
  try {
    exported = require(handler);
  } catch (err) {
    if (err.code === 'MODULE_NOT_FOUND') {
      const m = /Cannot find module '([^']+)'/.exec(err.message);
      return { kind: 'require', file: handler, line: 0, module: m ? m[1] : '', message: err.message.split('\n')[0], detail: String(err.stack || '') };
    }
    return { kind: 'load', file: handler, line: 0, message: `${err.name}: ${err.message}`, detail: String(err.stack || '') };
  }
  if (typeof exported !== 'function') {
    return { kind: 'export', file: handler, line: 0, message: `exports ${exported === null ? 'null' : typeof exported}` };
  }
  return {};
}

process.stdout.write(JSON.stringify(check()) + '\n');
// A handler may open sockets or timers when it loads; they must not keep
// the check alive.
process.exit(0);
