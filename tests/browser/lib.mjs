// lib.mjs: what the dashboard's browser test and bench share: a real
// `connrun serve` on 127.0.0.1 (port 0) from a temporary configuration,
// API calls with a token, and Debian's chromium started by playwright-core
// (Playwright's own browser download cannot work on these machines).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const TOKENS = {
  admin: 'browser-admin-token-0123456789',
  reader: 'browser-reader-token-0123456789',
};

export function parseArgs(names) {
  const args = {};
  for (let i = 2; i + 1 < process.argv.length; i += 2)
    args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
  for (const k of names)
    if (!args[k]) {
      console.error(`missing --${k}`);
      process.exit(2);
    }
  for (const k of Object.keys(args)) args[k] = path.resolve(args[k]);
  return args;
}

export function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

// The host section of a configuration with the two tokens.
export function hostYaml(dir, plugins) {
  return `host:
  data_dir: ${dir}/data
  plugin_dirs: [${plugins}]
  listen: 127.0.0.1:0
  health_check_interval: 1h
  api_tokens:
    - { name: admin, token: ${TOKENS.admin}, scopes: [read, write, admin] }
    - { name: reader, token: ${TOKENS.reader}, scopes: [read] }
`;
}

export { startServer, stopServer } from '../util/serve.mjs';

// An API client of base with token (a TOKENS key).
export function client(base, who = 'admin') {
  return async (method, url, body) => {
    const headers = { Authorization: `Bearer ${TOKENS[who]}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(base + url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = text;
    }
    return { status: res.status, body: json };
  };
}

// Polls fn (at most n times, ms apart) until it returns a truthy value.
export async function until(fn, n = 100, ms = 100) {
  for (let i = 0; i < n; i++) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, ms));
  }
  return null;
}

export const CHROMIUM = process.env.CONNRUN_CHROMIUM ?? '/usr/bin/chromium';

// Launches chromium headless; {browser: null, why} when it cannot start.
export async function launch() {
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    return { browser: null, why: `playwright-core is not installed (scripts/npm-deps.sh): ${e.message}` };
  }
  if (!fs.existsSync(CHROMIUM)) return { browser: null, why: `${CHROMIUM} is missing (scripts/deps.sh installs chromium)` };
  try {
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true,
      args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
    return { browser };
  } catch (e) {
    return { browser: null, why: `chromium cannot start: ${e.message.split('\n')[0]}` };
  }
}

// Signs page in with token who (the sign-in form, as a person does).
export async function signIn(page, base, who = 'admin') {
  await page.goto(`${base}/`);
  await page.fill('#token', TOKENS[who]);
  await page.click('form.signin button[type=submit]');
  await page.waitForSelector('body[data-ready="authorizations"]');
}
