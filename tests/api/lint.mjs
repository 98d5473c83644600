// lint.mjs: the OpenAPI lint (CTest: api_openapi_lint).
//
//   node lint.mjs --doc SRC/docs/openapi.yaml --config SRC/redocly.yaml
//
// Runs the pinned @redocly/cli (tests/api/node_modules) offline on the
// document with the repository's redocly.yaml, prints every problem, then
// "N passed, N failed" (each error is a failure; warnings are printed and
// do not fail); exits 1 on any error.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const args = {};
for (let i = 2; i + 1 < process.argv.length; i += 2)
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
if (!args.doc || !args.config) {
  console.error('usage: lint.mjs --doc openapi.yaml --config redocly.yaml');
  process.exit(2);
}
const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.join(here, 'node_modules', '@redocly', 'cli', 'bin', 'cli.js');
const r = spawnSync(process.execPath, [cli, 'lint', '--config', args.config, '--format', 'json', args.doc], {
  encoding: 'utf8',
  // No telemetry and no update check: the test needs no network.
  env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
});
let problems = null;
try {
  problems = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))).problems;
} catch {
  console.log(`FAIL redocly lint did not answer a report (exit ${r.status}; is scripts/npm-deps.sh run?)`);
  console.log(r.stdout + r.stderr);
  console.log('0 passed, 1 failed');
  process.exit(1);
}
let failed = 0;
for (const p of problems) {
  const where = (p.location ?? []).map((l) => l.pointer).join(', ');
  console.log(`${p.severity === 'error' ? 'FAIL' : 'WARN'} ${p.ruleId}: ${p.message} (${where})`);
  if (p.severity === 'error') failed++;
}
const passed = failed === 0 && r.status === 0 ? 1 : 0;
if (failed === 0 && r.status !== 0) {
  console.log(`FAIL redocly lint exited ${r.status}\n${r.stderr}`);
  failed = 1;
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
