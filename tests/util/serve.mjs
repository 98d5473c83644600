// serve.mjs: a real `connrun serve` for the Node tests (tests/api's
// contract test, tests/browser's dashboard test and bench): started on
// 127.0.0.1 port 0 with a configuration file, its output appended to a log,
// stopped with SIGTERM. Node's standard library only.
import { spawn } from 'node:child_process';
import fs from 'node:fs';

// Starts `bin serve -c cfg --listen 127.0.0.1:0`; resolves {child, port,
// base} once it logs "api: listening on ... (port N)"; rejects when it
// exits first or does not listen within timeoutMs.
export function startServer(bin, cfg, log, { timeoutMs = 120000 } = {}) {
  const child = spawn(bin, ['serve', '-c', cfg, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`connrun serve did not listen in ${timeoutMs} ms:\n${text.slice(-2000)}`)), timeoutMs);
    const onData = (d) => {
      fs.appendFileSync(log, d);
      if (text.length < 100000) text += d.toString();
      const m = text.match(/api: listening on \S+ \(port (\d+)\)/);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]), base: `http://127.0.0.1:${m[1]}` });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`connrun serve exited (${code}) before listening:\n${text.slice(-2000)}`));
    });
  });
}

// Stops the server with SIGTERM; resolves with its exit code (under the
// sanitizers a leak or an error makes it non-zero).
export function stopServer(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode ?? child.signalCode);
    child.on('exit', (code, signal) => resolve(code ?? signal));
    child.kill('SIGTERM');
  });
}
