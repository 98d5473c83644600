// app.js: the dashboard's entry: sign-in, navigation and the hash router
// (#/authorizations, #/authorizations/ID, #/integrations[/ID], #/events,
// #/subscriptions, #/runners). Each page is render(main, params) and may
// return a cleanup function, called when the page is left.
import { h, clear, errorBox } from './dom.js';
import { signIn, signOut, token, whoami } from './api.js';
import { startLive, stopLive } from './live.js';
import { authList, authSummary } from './auths.js';
import { integrations } from './works.js';
import { eventsPage } from './events.js';
import { subscriptionsPage } from './subs.js';
import { runnersPage } from './runners.js';

const PAGES = [
  ['authorizations', 'Authorizations'],
  ['integrations', 'Integrations'],
  ['events', 'Events'],
  ['subscriptions', 'Subscriptions and alerts'],
  ['runners', 'Runners'],
];

let cleanup = null;
let generation = 0; // of the page shown: a page left while loading is cleaned at once

function signInPage(main, why) {
  const input = h('input', { id: 'token', type: 'password', autocomplete: 'off', required: true });
  const err = h('div');
  const form = h('form', { class: 'signin', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sign in to connrun'),
    h('p', {}, 'Paste an API token (host.api_tokens in the configuration). It stays in this tab only.'),
    h('label', { for: 'token' }, 'API token'), input,
    h('button', { type: 'submit' }, 'Sign in'), err);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await signIn(input.value.trim());
      location.hash = '#/authorizations';
      route();
    } catch (x) {
      clear(err, errorBox(x.status === 401 ? new Error('This token is not valid.')
        : x.status === 403 ? new Error('This token lacks the read scope the dashboard needs.') : x));
    }
  });
  clear(main, form, why ? errorBox(why) : null);
  input.focus();
}

function renderNav(current) {
  const nav = document.getElementById('nav');
  const me = whoami();
  if (!me) {
    clear(nav);
    clear(document.getElementById('who'));
    return;
  }
  clear(nav, h('ul', {}, PAGES.map(([id, label]) =>
    h('li', {}, h('a', { href: `#/${id}`, 'aria-current': id === current ? 'page' : undefined }, label)))));
  clear(document.getElementById('who'), h('span', {}, `${me.name} (${me.scopes.join(', ')})`), ' ',
    h('button', { type: 'button', class: 'link', onclick: () => { signOut(); stopLive(); location.hash = '#/signin'; route(); } }, 'Sign out'));
}

// "#/a/b?x=1" -> {parts: ['a', 'b'], query: {x: '1'}}
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, q] = raw.split('?');
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), query: Object.fromEntries(new URLSearchParams(q ?? '')) };
}

async function route() {
  const gen = ++generation;
  const main = document.getElementById('main');
  delete document.body.dataset.ready;
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  if (!whoami() && token()) {
    try {
      await signIn(token());
    } catch (e) {
      signOut();
    }
  }
  const { parts, query } = parseHash();
  if (!whoami()) {
    renderNav(null);
    signInPage(main);
    return;
  }
  startLive();
  const page = parts[0] ?? 'authorizations';
  renderNav(page);
  const params = { id: parts[1], query };
  const fn = { authorizations: parts[1] ? authSummary : authList, integrations, events: eventsPage,
    subscriptions: subscriptionsPage, runners: runnersPage }[page];
  if (!fn) {
    clear(main, h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '#/authorizations' }, 'Authorizations')));
    return;
  }
  try {
    const done = (await fn(main, params)) ?? null;
    if (gen !== generation) {
      done?.();
      return;
    }
    cleanup = done;
    // Tests and the bench wait for this: the page has its data.
    document.body.dataset.ready = page === 'authorizations' && parts[1] ? 'summary' : page;
    performance.mark(`connrun:ready:${document.body.dataset.ready}`);
  } catch (e) {
    if (gen === generation) clear(main, errorBox(e));
  }
}

window.addEventListener('hashchange', route);
route();
