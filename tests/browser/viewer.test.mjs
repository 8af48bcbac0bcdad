// Browser tests of faro's map viewer: node's test runner and playwright-core driving Debian's
// Chromium against a faro started on port 0 with the demo data (`target/debug/faro`, built
// beforehand by scripts/browser-tests.sh). Screenshots go to target/screenshots/.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(path.join(root, 'web/package.json'));
const { chromium } = require('playwright-core');

const FARO = process.env.FARO_BIN ?? path.join(root, 'target/debug/faro');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = path.join(root, 'target/screenshots');
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];

let faro;
let origin;
let operatorToken;
let browser;
let dir;

function startFaro(databaseUrl) {
  return new Promise((resolve, reject) => {
    const child = spawn(FARO, ['serve', '--listen', '127.0.0.1:0', '--database-url', databaseUrl], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1', RUST_LOG: 'info' },
    });
    let log = '';
    const timer = setTimeout(() => reject(new Error(`faro did not start:\n${log}`)), 60000);
    const read = (chunk) => {
      log += chunk;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)\//.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve({ child, origin: m[1] });
      }
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
    child.on('exit', (code) => reject(new Error(`faro exited (${code}):\n${log}`)));
  });
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faro-browser-'));
  const db = `sqlite://${path.join(dir, 'faro.db')}`;
  ({ child: faro, origin } = await startFaro(db));
  operatorToken = execFileSync(FARO, ['token', 'create', '--role', 'operator', '--name', 'browser-test', '--database-url', db],
    { encoding: 'utf8' }).trim().split(/\s+/).find((w) => w.startsWith('faro_'));
  assert.ok(operatorToken, 'faro token create printed a token');
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  fs.mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  faro?.kill('SIGTERM');
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh page with every request, failed answer and console error recorded. */
async function open(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'it-IT', ...options });
  const page = await context.newPage();
  const seen = { requests: [], failures: [], errors: [] };
  context.on('request', (r) => seen.requests.push(r.url()));
  context.on('response', (r) => {
    if (r.status() >= 400) seen.failures.push(`${r.status()} ${r.url()}`);
  });
  // MapLibre aborts the tiles it no longer needs while the map moves; that is no failure.
  context.on('requestfailed', (r) => {
    if (r.failure()?.errorText !== 'net::ERR_ABORTED') seen.failures.push(`failed ${r.url()} ${r.failure()?.errorText}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error') seen.errors.push(m.text());
  });
  page.on('pageerror', (e) => seen.errors.push(String(e)));
  await page.goto(`${origin}/`);
  await idle(page, 0);
  return { context, page, seen };
}

/** Waits until the map has gone idle more than `count` times; returns the new count. */
async function idle(page, count) {
  await page.waitForFunction((n) => Number(document.documentElement.dataset.idle ?? 0) > n, count, { timeout: 60000 });
  return page.evaluate(() => Number(document.documentElement.dataset.idle));
}

/** Waits until the viewer has answered more than `count` nearest searches; returns the count. */
async function nearestDone(page, count) {
  await page.waitForFunction((n) => Number(document.documentElement.dataset.nearestRuns ?? 0) > n, count);
  return page.evaluate(() => Number(document.documentElement.dataset.nearestRuns));
}

const listedIds = (page) => page.$$eval('#nearest-results li[data-id]', (lis) => lis.map((li) => li.dataset.id));

async function nearestFromFaro(query) {
  const res = await fetch(`${origin}/nearest?${new URLSearchParams(query)}`);
  assert.equal(res.status, 200);
  return (await res.json()).features.map((f) => f.id);
}

const rendered = (page, layers) => page.evaluate((ids) => {
  const map = window.faroMap;
  const present = ids.filter((id) => map.getLayer(id));
  return present.length ? map.queryRenderedFeatures({ layers: present }).map((f) => ({ layer: f.layer.id, ...f.properties })) : [];
}, layers);

const RESTRICTED = ['settlements-area', 'settlements-point', 'settlements_clusters-circle',
  'worksites-area', 'worksites-point', 'worksites_clusters-circle'];

function assertOnlyFaro(seen) {
  const foreign = seen.requests.filter((u) => !u.startsWith(`${origin}/`) && !/^(data|blob):/.test(u));
  assert.deepEqual(foreign, [], 'requests to another host');
  assert.deepEqual(seen.failures, [], 'failed requests');
  assert.deepEqual(seen.errors, [], 'console errors');
}

/** A point of the map's canvas with no feature one could click on, near its middle. */
async function emptySpot(page) {
  return page.evaluate(() => {
    const map = window.faroMap;
    const layers = map.getStyle().layers.map((l) => l.id)
      .filter((id) => /^(services|settlements|worksites)/.test(id));
    const box = map.getCanvas().getBoundingClientRect();
    for (let dy = 0; dy < 200; dy += 12) {
      for (const dx of [40, 60, 80, 100, 140]) {
        const x = box.width / 2 + dx;
        const y = box.height / 2 + dy;
        const near = map.queryRenderedFeatures([[x - 15, y - 15], [x + 15, y + 15]], { layers });
        if (near.length === 0) return { x: box.left + x, y: box.top + y, lngLat: map.unproject([x, y]) };
      }
    }
    return null;
  });
}

/** Waits until the coverage panel has answered more than `count` times. */
async function coverageDone(page, count) {
  await page.waitForFunction((n) => Number(document.documentElement.dataset.coverageRuns ?? 0) > n, count, { timeout: 120000 });
}

/** The coverage table as the page shows it: per row, the territory, the share and the
 *  people and workers covered and in total (null where the page shows none). */
const coverageTable = (page) => page.$$eval('#coverage-table tbody tr, #coverage-table tfoot tr', (rows) => rows.map((tr) => {
  const cell = (field) => tr.querySelector(`td[data-field="${field}"]`);
  const demand = (field) => (cell(field).dataset.covered === undefined ? null
    : { covered: Number(cell(field).dataset.covered), total: Number(cell(field).dataset.total), text: cell(field).textContent });
  return {
    territory: tr.dataset.territory ?? 'total', name: tr.querySelector('th').textContent,
    share: Number(cell('covered_share').dataset.value), shown: cell('covered_share').textContent,
    people: demand('people'), workers: demand('workers'),
  };
}));

/** The same rows from a /coverage answer (Italian number formats, as the page's). */
function expectedTable(report) {
  const fmt = (n, digits = 0) => new Intl.NumberFormat('it', { maximumFractionDigits: digits }).format(n);
  const demand = (f, size) => (f ? { covered: f[`${size}_covered`], total: f[`${size}_total`], text: `${fmt(f[`${size}_covered`])} / ${fmt(f[`${size}_total`])}` } : null);
  const row = (f, total) => ({
    territory: total ? 'total' : f.id, name: total ? 'Totale' : f.name,
    share: f.covered_share, shown: `${fmt(100 * f.covered_share, 1)} %`,
    people: demand(f.settlements, 'people'), workers: demand(f.worksites, 'workers'),
  });
  return [...report.territories.map((f) => row(f, false)), row(report.total, true)];
}

/** The features of one of the map's GeoJSON sources: id, and the area or type where given. */
const sourceFeatures = (page, source) => page.evaluate(async (id) => {
  const data = await window.faroMap.getSource(id).getData();
  return data.features.map((f) => (f.properties.area_km2 === undefined ? { id: f.id } : { id: f.id, area_km2: f.properties.area_km2, type: f.geometry.type }));
}, source);

describe('the map viewer', { concurrency: false }, () => {
  test('loads from faro alone, with no console error, and renders services and territories', async () => {
    const { context, page, seen } = await open();
    const services = await rendered(page, ['services-marker', 'services-geo-marker', 'services-geo-cluster', 'services_clusters-circle']);
    const territories = await rendered(page, ['territories-fill', 'territories-outline']);
    assert.equal(await page.evaluate(() => window.faroMap.getZoom()), 9, "the style's zoom");
    assert.ok(services.length > 0, 'no service rendered');
    // At zoom 9 the services of Treviso overlap: they are drawn as clusters with their counts.
    const clusters = services.filter((f) => f.layer === 'services-geo-cluster');
    assert.ok(clusters.some((c) => c.point_count >= 2), JSON.stringify(clusters));
    const counts = await page.evaluate(() => window.faroMap.queryRenderedFeatures({ layers: ['services-geo-cluster-count'] }).length);
    assert.ok(counts > 0, 'no cluster count drawn');
    assert.ok(territories.length > 0, 'no territory rendered');
    assert.ok(seen.requests.some((u) => u.includes('/fonts/noto-sans-latin-400-normal.woff2')), 'the label font was not loaded');
    assertOnlyFaro(seen);
    const headers = (await page.request.get(`${origin}/`, { headers: { Accept: 'text/html' } })).headers();
    assert.match(headers['content-security-policy'], /default-src 'self'/);
    assert.equal(headers['x-content-type-options'], 'nosniff');
    assert.equal(headers['referrer-policy'], 'no-referrer');
    await context.close();
  });

  test('a click lists the nearest services in the order /nearest gives, with lines drawn', async () => {
    const { context, page, seen } = await open();
    const spot = await emptySpot(page);
    assert.ok(spot, 'no empty spot on the map');
    await page.mouse.click(spot.x, spot.y);
    await nearestDone(page, 0);
    const listed = await page.$$eval('#nearest-results li[data-id]', (lis) => lis.map((li) => li.dataset.id));
    const [lon, lat] = await page.evaluate(() => {
      const [l1, l2] = document.querySelector('#nearest-origin').textContent.match(/-?\d+\.\d+/g);
      return [Number(l2), Number(l1)];
    });
    assert.ok(Math.abs(lon - spot.lngLat.lng) < 1e-3 && Math.abs(lat - spot.lngLat.lat) < 1e-3, 'origin is the clicked point');
    const params = new URLSearchParams({ lon: spot.lngLat.lng.toFixed(6), lat: spot.lngLat.lat.toFixed(6), k: '5' });
    const expected = (await (await fetch(`${origin}/nearest?${params}`)).json()).features.map((f) => f.id);
    assert.equal(listed.length, 5);
    assert.deepEqual(listed, expected);
    const distances = await page.$$eval('#nearest-results .dist', (els) => els.map((e) => e.textContent));
    assert.ok(distances.every((d) => /^\d[\d.,]* (m|km)$/.test(d)), distances.join(' | '));
    await idle(page, await page.evaluate(() => Number(document.documentElement.dataset.idle)) - 1);
    const lines = await page.evaluate(() => window.faroMap.querySourceFeatures('nearest')
      .filter((f) => f.geometry.type === 'LineString').map((f) => f.properties.id));
    assert.deepEqual([...new Set(lines)].sort(), [...expected].sort());
    await page.screenshot({ path: path.join(SHOTS, 'viewer-desktop.png') });
    // Selecting one flies to it.
    await page.click(`#nearest-results li[data-id="${expected[0]}"] button`);
    await page.waitForSelector('.maplibregl-popup');
    await idle(page, await page.evaluate(() => Number(document.documentElement.dataset.idle)));
    const centre = await page.evaluate(() => window.faroMap.getCenter());
    const target = (await (await fetch(`${origin}/collections/services/items/${expected[0]}`)).json()).geometry.coordinates;
    assert.ok(Math.abs(centre.lng - target[0]) < 1e-3 && Math.abs(centre.lat - target[1]) < 1e-3, 'the map flew to the service');
    const popup = await page.textContent('.maplibregl-popup');
    assert.match(popup, /Verificato il/);
    assertOnlyFaro(seen);
    await context.close();
  });

  test('"use my position" lists the nearest services there; open-now and language filters apply', async () => {
    const here = { latitude: 45.6669, longitude: 12.2431 };
    const { context, page, seen } = await open({ geolocation: here, permissions: ['geolocation'] });
    await page.click('#locate');
    let runs = await nearestDone(page, 0);
    const at = { lon: here.longitude.toFixed(6), lat: here.latitude.toFixed(6) };
    const plain = await nearestFromFaro({ ...at, k: '5' });
    assert.deepEqual(await listedIds(page), plain);
    await page.selectOption('#k', '10');
    runs = await nearestDone(page, runs);
    await page.check('#open-now');
    runs = await nearestDone(page, runs);
    await page.selectOption('#spoken', 'en');
    runs = await nearestDone(page, runs);
    const filtered = await nearestFromFaro({ ...at, k: '10', open_at: 'now', language: 'en' });
    assert.deepEqual(await listedIds(page), filtered);
    const everyone = await nearestFromFaro({ ...at, k: '10' });
    assert.notDeepEqual(filtered, everyone, 'the filters changed nothing, so this test proves nothing');
    assertOnlyFaro(seen);
    await context.close();
  });

  test('anonymous sees no settlement or worksite; an operator does after signing in, and not after signing out', async () => {
    const { context, page, seen } = await open();
    const restrictedRequest = (u) => /settlements|worksites/.test(decodeURIComponent(u));
    assert.deepEqual(seen.requests.filter(restrictedRequest), []);
    assert.deepEqual(await rendered(page, RESTRICTED), []);

    assertOnlyFaro(seen);
    // A bad token: a clear message, still anonymous (the browser logs the 401 it got).
    await page.fill('#token', 'faro_not_a_token');
    await page.click('#sign-in button[type=submit]');
    await page.waitForSelector('#status.error');
    assert.match(await page.textContent('#status'), /401/);
    assert.deepEqual(seen.failures, [`401 ${origin}/style.json`]);
    seen.failures.length = 0;
    seen.errors = seen.errors.filter((e) => !/status of 401/.test(e));

    let count = await page.evaluate(() => Number(document.documentElement.dataset.idle));
    await page.fill('#token', operatorToken);
    await page.click('#sign-in button[type=submit]');
    await page.waitForFunction(() => window.faroMap.getLayer('settlements-point'));
    count = await idle(page, count);
    const restricted = await rendered(page, RESTRICTED);
    assert.ok(restricted.some((f) => f.layer.startsWith('settlements')), 'no settlement rendered');
    assert.ok(restricted.some((f) => f.layer.startsWith('worksites')), 'no worksite rendered');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('faro.token')), operatorToken);

    await page.click('#sign-out');
    await page.waitForFunction(() => !window.faroMap.getLayer('settlements-point'));
    await idle(page, count);
    assert.deepEqual(await rendered(page, RESTRICTED), []);
    const tiles = await page.evaluate(() => window.faroMap.getSource('faro').tiles);
    assert.ok(tiles.every((u) => !/settlements|worksites/.test(u)), tiles.join());
    assert.equal(await page.evaluate(() => sessionStorage.getItem('faro.token')), null);
    assertOnlyFaro(seen);
    await context.close();
  });

  test('a token revoked while in use: a clear 401 message, and the restricted layers go', async () => {
    const db = `sqlite://${path.join(dir, 'faro.db')}`;
    const created = spawnSync(FARO, ['token', 'create', '--role', 'operator', '--name', 'revoked-in-use', '--database-url', db],
      { encoding: 'utf8' });
    assert.equal(created.status, 0, created.stderr);
    const token = created.stdout.trim();
    const id = /token (\d+) for/.exec(created.stderr)?.[1];
    assert.ok(id, created.stderr);
    const { context, page, seen } = await open();
    let count = await page.evaluate(() => Number(document.documentElement.dataset.idle));
    await page.fill('#token', token);
    await page.click('#sign-in button[type=submit]');
    await page.waitForFunction(() => window.faroMap.getLayer('settlements-point'));
    count = await idle(page, count);
    execFileSync(FARO, ['token', 'revoke', id, '--database-url', db]);
    // New tiles are asked for with the revoked token: faro answers 401.
    await page.evaluate(() => window.faroMap.jumpTo({ center: [12.0, 45.85], zoom: 11 }));
    await page.waitForSelector('#status.error');
    assert.match(await page.textContent('#status'), /401/);
    await page.waitForFunction(() => !window.faroMap.getLayer('settlements-point'));
    await idle(page, count);
    assert.deepEqual(await rendered(page, RESTRICTED), []);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('faro.token')), null);
    assert.equal(await page.isVisible('#sign-in'), true);
    assert.ok(seen.failures.length > 0 && seen.failures.every((f) => f.startsWith('401 ')), seen.failures.join('\n'));
    assert.deepEqual(seen.errors.filter((e) => !/status of 401/.test(e)), []);
    await context.close();
  });

  test('the search finds services by name; a result opens its popup', async () => {
    const { context, page, seen } = await open();
    const all = (await (await fetch(`${origin}/collections/services/items?limit=1000`)).json()).features;
    const target = all.find((f) => f.properties.phone && f.properties.opening_hours);
    assert.ok(target, 'the demo data has a service with a phone and opening hours');
    const word = target.properties.name.split(/\s+/).find((w) => w.length > 5) ?? target.properties.name;
    await page.fill('#search', word.toUpperCase());
    const names = await page.$$eval('#search-results .name', (els) => els.map((e) => e.textContent));
    assert.ok(names.includes(target.properties.name), `${target.properties.name} not in ${names}`);
    assert.ok(names.every((n) => n.toLowerCase().includes(word.toLowerCase())), names.join(' | '));
    await page.click(`#search-results li:nth-child(${names.indexOf(target.properties.name) + 1}) button`);
    await page.waitForSelector('.maplibregl-popup .open, .maplibregl-popup .closed');
    const popup = page.locator('.maplibregl-popup');
    assert.equal(await popup.locator('h3').textContent(), target.properties.name);
    assert.match(await popup.locator('a[href^="tel:"]').getAttribute('href'), /^tel:\+?\d+$/);
    assert.match(await popup.textContent(), new RegExp(target.properties.last_verified));
    assertOnlyFaro(seen);
    await context.close();
  });

  test('the kind filter hides the other kinds', async () => {
    const { context, page } = await open();
    // Close enough that services are drawn one by one rather than clustered.
    let count = await page.evaluate(() => Number(document.documentElement.dataset.idle));
    const all = (await (await fetch(`${origin}/collections/services/items?limit=1000`)).json()).features;
    const byKind = (kind) => all.filter((f) => f.properties.kind === kind).length;
    await page.evaluate(() => window.faroMap.jumpTo({ center: [12.245, 45.667], zoom: 14 }));
    count = await idle(page, count);
    const before = await rendered(page, ['services-marker']);
    const kinds = [...new Set(before.map((f) => f.kind))];
    assert.ok(kinds.length > 1, `only ${kinds} rendered`);
    await page.click('#kinds-none');
    await page.check(`#kinds input[data-kind="${kinds[0]}"]`);
    // Each of the two changes redraws the map: the first idle may be the one of "none", with
    // nothing drawn; the one of the chosen kind follows.
    let after = [];
    for (let i = 0; i < 3 && after.length === 0; i++) {
      count = await idle(page, count);
      after = await rendered(page, ['services-marker']);
    }
    assert.ok(after.length > 0);
    assert.deepEqual([...new Set(after.map((f) => f.kind))], [kinds[0]]);
    // Zoomed out, the clusters count only the kind left.
    await page.evaluate(() => window.faroMap.jumpTo({ center: [12.24, 45.75], zoom: 9 }));
    count = await idle(page, count);
    const far = await rendered(page, ['services-geo-marker', 'services-geo-cluster']);
    assert.ok(far.length > 0);
    assert.ok(far.filter((f) => f.layer === 'services-geo-marker').every((f) => f.kind === kinds[0]));
    const drawn = far.reduce((n, f) => n + (f.point_count ?? 1), 0);
    assert.ok(drawn <= byKind(kinds[0]), `${drawn} drawn, ${byKind(kinds[0])} of ${kinds[0]}`);
    await context.close();
  });

  test('Italian by default; the English switch changes the strings; Arabic is right to left', async () => {
    const { context, page } = await open();
    assert.equal(await page.textContent('#title'), 'faro – mappa della rete');
    assert.equal(await page.getAttribute('html', 'lang'), 'it');
    await page.selectOption('#lang', 'en');
    assert.equal(await page.textContent('#title'), 'faro – network map');
    assert.equal(await page.textContent('#h-nearest'), 'Nearest services');
    await page.selectOption('#lang', 'ar');
    assert.equal(await page.getAttribute('html', 'dir'), 'rtl');
    assert.equal(await page.textContent('#h-nearest'), 'أقرب الخدمات');
    assert.equal(await page.textContent('#h-kinds'), 'Service kinds', 'falls back to English');
    const fits = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
    assert.ok(fits, 'horizontal scroll in Arabic');
    // The panel moves to the right and the map's controls to the left: nothing overlaps.
    const boxes = await page.evaluate(() => [document.getElementById('panel'), document.querySelector('.maplibregl-ctrl-top-right')]
      .map((e) => { const r = e.getBoundingClientRect(); return { left: r.left, right: r.right, top: r.top, bottom: r.bottom }; }));
    const [panel, controls] = boxes;
    assert.ok(panel.right > 1200 && controls.right < panel.left, JSON.stringify(boxes));
    await page.screenshot({ path: path.join(SHOTS, 'viewer-desktop-ar.png') });
    await context.close();
  });

  test("the browser's language picks the default", async () => {
    for (const [locale, title, dir] of [['en-GB', 'faro – network map', 'ltr'], ['ar-EG', 'فارو – خريطة الشبكة', 'rtl'], ['de-DE', 'faro – mappa della rete', 'ltr']]) {
      const { context, page } = await open({ locale });
      assert.equal(await page.textContent('#title'), title, locale);
      assert.equal(await page.getAttribute('html', 'dir'), dir, locale);
      await context.close();
    }
  });

  test('panel text meets WCAG AA contrast and keyboard focus is visible', async () => {
    const { context, page } = await open();
    const low = await page.evaluate(() => {
      const rgb = (c) => (c.match(/[\d.]+/g) ?? []).map(Number);
      const lum = ([r, g, b]) => {
        const f = (v) => { const x = v / 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
      };
      const background = (node) => {
        for (let n = node; n; n = n.parentElement) {
          const c = rgb(getComputedStyle(n).backgroundColor);
          if (c.length === 3 || (c.length === 4 && c[3] > 0.9)) return c.slice(0, 3);
        }
        return [255, 255, 255];
      };
      const out = [];
      for (const node of document.querySelectorAll('#panel *')) {
        if (node.offsetParent === null || node.getAttribute('aria-hidden') === 'true' || node.closest('[aria-hidden=true]')) continue;
        const own = [...node.childNodes].some((c) => c.nodeType === 3 && c.textContent.trim());
        if (!own) continue;
        const style = getComputedStyle(node);
        const [a, b] = [lum(rgb(style.color).slice(0, 3)), lum(background(node))];
        const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        const large = parseFloat(style.fontSize) >= 24 || (parseFloat(style.fontSize) >= 18.66 && Number(style.fontWeight) >= 700);
        if (ratio < (large ? 3 : 4.5)) out.push(`${node.tagName} "${node.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}`);
      }
      return out;
    });
    assert.deepEqual(low, []);
    await page.focus('#search');
    await page.keyboard.press('Tab');
    const outline = await page.evaluate(() => {
      const s = getComputedStyle(document.activeElement);
      return { id: document.activeElement.id, style: s.outlineStyle, width: parseFloat(s.outlineWidth) };
    });
    assert.notEqual(outline.style, 'none', JSON.stringify(outline));
    assert.ok(outline.width >= 2, JSON.stringify(outline));
    await context.close();
  });

  test('with --basemap-url the base map is drawn, and its origin is the one other host the CSP allows', async () => {
    // A 1x1 PNG served as every tile of a stand-in base map on another port (another origin).
    const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
    const tiles = [];
    const server = http.createServer((req, res) => {
      tiles.push(req.url);
      res.writeHead(200, { 'Content-Type': 'image/png', 'Access-Control-Allow-Origin': '*' });
      res.end(png);
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const basemap = `http://127.0.0.1:${server.address().port}`;
    const db = `sqlite://${path.join(dir, 'basemap.db')}`;
    const child = spawn(FARO, ['serve', '--listen', '127.0.0.1:0', '--database-url', db, '--basemap-url', `${basemap}/{z}/{x}/{y}.png`],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const other = await new Promise((resolve, reject) => {
        let log = '';
        const read = (chunk) => {
          log += chunk;
          const m = /listening on (http:\/\/127\.0\.0\.1:\d+)\//.exec(log);
          if (m) resolve(m[1]);
        };
        child.stdout.on('data', read);
        child.stderr.on('data', read);
        child.on('exit', (code) => reject(new Error(`faro exited (${code}): ${log}`)));
      });
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      const requests = [];
      const errors = [];
      context.on('request', (r) => requests.push(r.url()));
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      page.on('pageerror', (e) => errors.push(String(e)));
      const res = await page.goto(`${other}/`);
      const csp = res.headers()['content-security-policy'];
      assert.match(csp, new RegExp(`img-src 'self' data: blob: ${basemap};`));
      assert.match(csp, new RegExp(`connect-src 'self' ${basemap};`));
      await idle(page, 0);
      assert.ok(await page.evaluate(() => Boolean(window.faroMap.getLayer('basemap'))));
      assert.ok(tiles.length > 0 && tiles.every((t) => /^\/\d+\/\d+\/\d+\.png$/.test(t)), tiles.join());
      const foreign = requests.filter((u) => !u.startsWith(`${other}/`) && !u.startsWith(`${basemap}/`) && !/^(data|blob):/.test(u));
      assert.deepEqual(foreign, []);
      assert.deepEqual(errors, []);
      await context.close();
    } finally {
      child.kill('SIGTERM');
      server.close();
    }
  });

  test('the coverage panel: chosen kinds and radius give the table and the gaps faro answers', async () => {
    const { context, page, seen } = await open();
    // Two kinds the data has the most services of (from the API, not from a list here).
    const all = (await (await fetch(`${origin}/collections/services/items?limit=10000`)).json()).features;
    const counts = new Map();
    for (const f of all) counts.set(f.properties.kind, (counts.get(f.properties.kind) ?? 0) + 1);
    const kinds = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 2).map(([k]) => k);
    assert.equal(kinds.length, 2, 'the data has two kinds of service');
    await page.click('#coverage summary');
    for (const box of await page.$$('#coverage-kinds input[data-kind]')) {
      const kind = await box.getAttribute('data-kind');
      await box.setChecked(kinds.includes(kind));
    }
    await page.fill('#coverage-radius', '12');
    // Anonymous: faro answers 401 to /coverage/uncovered, so the panel does not offer it.
    assert.equal(await page.isDisabled('#coverage-uncovered'), true);
    await page.click('#coverage-run');
    await coverageDone(page, 0);
    const query = new URLSearchParams({ kind: kinds.join(','), radius_m: '12000' });
    const report = await (await fetch(`${origin}/coverage?${query}`)).json();
    const gaps = await (await fetch(`${origin}/coverage/gaps?${query}`)).json();
    assert.ok(report.territories.length > 0, 'no territory in /coverage');
    assert.deepEqual(await coverageTable(page), expectedTable(report));
    // The anonymous table has no people or workers: faro gives none.
    assert.equal(await page.$$eval('#coverage-table td[data-covered]', (tds) => tds.length), 0);
    assert.match(await page.textContent('#coverage-status'), /anonimo/i);
    const drawn = await sourceFeatures(page, 'coverage-gaps');
    assert.deepEqual(drawn, gaps.features.map((f) => ({ id: f.id, area_km2: f.properties.area_km2, type: f.geometry.type })));
    assert.ok(drawn.length > 0, 'no gap to draw: the radius covers everything, this test proves little');
    assert.deepEqual(await sourceFeatures(page, 'coverage-hexes'), []);
    await idle(page, await page.evaluate(() => Number(document.documentElement.dataset.idle)) - 1);
    assert.ok((await rendered(page, ['coverage-gaps-fill'])).length > 0, 'the gaps are not drawn');
    assert.deepEqual(seen.requests.filter((u) => /coverage\/(uncovered|suggest)/.test(u)), []);
    // Fewer kinds leave more uncovered: the table follows the new answer.
    await page.click('#coverage-kinds input[data-kind="' + kinds[1] + '"]');
    await page.click('#coverage-run');
    await coverageDone(page, 1);
    const fewer = await (await fetch(`${origin}/coverage?${new URLSearchParams({ kind: kinds[0], radius_m: '12000' })}`)).json();
    assert.deepEqual(await coverageTable(page), expectedTable(fewer));
    await page.click('#coverage-clear');
    assert.deepEqual(await sourceFeatures(page, 'coverage-gaps'), []);
    assert.equal(await page.isVisible('#coverage-table'), false);
    assertOnlyFaro(seen);
    await context.close();
  });

  test('signed in, the coverage panel draws the hexagons and uncovered records faro answers, and says why a resolution is refused', async () => {
    const { context, page, seen } = await open();
    await page.fill('#token', operatorToken);
    await page.click('#sign-in button[type=submit]');
    await page.waitForFunction(() => window.faroMap.getLayer('settlements-point'));
    await page.click('#coverage summary');
    await page.fill('#coverage-radius', '10');
    await page.selectOption('#coverage-month', '9');
    await page.check('#coverage-hexes');
    await page.check('#coverage-uncovered');
    assert.equal(await page.inputValue('#coverage-resolution'), '7', 'the default resolution');
    await page.click('#coverage-run');
    await coverageDone(page, 0);
    const auth = { headers: { Authorization: `Bearer ${operatorToken}` } };
    const kinds = await page.$$eval('#coverage-kinds input:checked', (boxes) => boxes.map((b) => b.dataset.kind));
    const query = new URLSearchParams({ kind: kinds.join(','), radius_m: '10000', month: '9' });
    const get = async (p, extra = {}) => (await fetch(`${origin}${p}?${new URLSearchParams({ ...Object.fromEntries(query), ...extra })}`, auth)).json();
    const report = await get('/coverage');
    assert.deepEqual(await coverageTable(page), expectedTable(report));
    assert.ok((await page.$$eval('#coverage-table td[data-covered]', (tds) => tds.length)) > 0, 'no people or workers shown');
    const hexes = await get('/coverage/hexes', { resolution: '7' });
    const drawnHexes = await sourceFeatures(page, 'coverage-hexes');
    assert.deepEqual(drawnHexes.map((f) => f.id), hexes.features.map((f) => f.id));
    assert.ok(drawnHexes.length > 0);
    const uncovered = [...(await get('/coverage/uncovered', { collection: 'settlements' })).features,
      ...(await get('/coverage/uncovered', { collection: 'worksites' })).features].map((f) => f.id);
    assert.ok(uncovered.length > 0, 'nothing uncovered: this test proves little');
    assert.deepEqual((await sourceFeatures(page, 'coverage-uncovered')).map((f) => f.id), uncovered);
    await idle(page, await page.evaluate(() => Number(document.documentElement.dataset.idle)) - 1);
    await page.locator('#coverage-table').scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(SHOTS, 'viewer-coverage.png') });
    // A resolution finer than faro serves: its message, the table kept, no hexagon drawn.
    await page.selectOption('#coverage-resolution', '9');
    await page.click('#coverage-run');
    await coverageDone(page, 1);
    assert.match(await page.textContent('#coverage-status'), /resolution/);
    assert.deepEqual(await sourceFeatures(page, 'coverage-hexes'), []);
    assert.deepEqual(await coverageTable(page), expectedTable(report));
    assert.deepEqual(seen.failures.filter((f) => !f.startsWith(`400 ${origin}/coverage/hexes?`)), []);
    seen.failures.length = 0;
    seen.errors = seen.errors.filter((e) => !/status of 400/.test(e));
    assertOnlyFaro(seen);
    await context.close();
  });

  test('on a phone the coverage panel fits the sheet, and the sheet folds away to show the overlay', async () => {
    const { context, page, seen } = await open({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    await page.tap('#coverage summary');
    await page.fill('#coverage-radius', '3');
    await page.tap('#coverage-run');
    await coverageDone(page, 0);
    const kinds = await page.$$eval('#coverage-kinds input:checked', (boxes) => boxes.map((b) => b.dataset.kind));
    const query = new URLSearchParams({ kind: kinds.join(','), radius_m: '3000' });
    const report = await (await fetch(`${origin}/coverage?${query}`)).json();
    assert.deepEqual(await coverageTable(page), expectedTable(report));
    const gaps = await (await fetch(`${origin}/coverage/gaps?${query}`)).json();
    assert.deepEqual((await sourceFeatures(page, 'coverage-gaps')).map((f) => f.id), gaps.features.map((f) => f.id));
    assert.ok(gaps.features.some((f) => f.properties.area_km2 > 0), 'no gap at 3 km: this test proves little');
    await page.locator('#coverage-table').scrollIntoViewIfNeeded();
    const layout = await page.evaluate(() => {
      const small = [...document.querySelectorAll('#coverage button, #coverage select, #coverage input:not([type=checkbox]), #coverage summary, #coverage-kinds label')]
        .filter((e) => e.offsetParent !== null)
        .map((e) => ({ e: e.id || e.textContent.trim().slice(0, 20), h: e.getBoundingClientRect().height }))
        .filter(({ h }) => h < 44);
      const table = document.getElementById('coverage-table').getBoundingClientRect();
      const body = document.getElementById('panel-body').getBoundingClientRect();
      return { scroll: document.documentElement.scrollWidth, width: window.innerWidth, small, table: { left: table.left, right: table.right }, body: { left: body.left, right: body.right } };
    });
    assert.ok(layout.scroll <= layout.width, `scrollWidth ${layout.scroll} > ${layout.width}`);
    assert.ok(layout.table.left >= layout.body.left - 1 && layout.table.right <= layout.body.right + 1, JSON.stringify(layout));
    assert.deepEqual(layout.small, [], 'touch targets under 44 px');
    await page.screenshot({ path: path.join(SHOTS, 'viewer-coverage-phone.png') });
    await page.tap('#sheet-toggle');
    assert.equal(await page.isVisible('#panel-body'), false);
    await idle(page, await page.evaluate(() => Number(document.documentElement.dataset.idle)) - 1);
    assert.ok((await rendered(page, ['coverage-gaps-fill'])).length > 0, 'the gaps are not drawn');
    assertOnlyFaro(seen);
    await context.close();
  });

  test('on a 390x844 phone the panel is a bottom sheet with no horizontal scroll and 44 px targets', async () => {
    const { context, page, seen } = await open({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    const layout = await page.evaluate(() => {
      const panel = document.getElementById('panel').getBoundingClientRect();
      const small = [...document.querySelectorAll('button, select, input:not([type=checkbox]), #layers label, #kinds label')]
        .filter((e) => e.offsetParent !== null)
        .map((e) => ({ e: e.id || e.textContent.trim().slice(0, 20), h: e.getBoundingClientRect().height }))
        .filter(({ h }) => h < 44);
      return {
        scroll: document.documentElement.scrollWidth, width: window.innerWidth,
        panel: { left: panel.left, right: panel.right, bottom: panel.bottom, top: panel.top }, small,
      };
    });
    assert.ok(layout.scroll <= layout.width, `scrollWidth ${layout.scroll} > ${layout.width}`);
    assert.ok(layout.panel.left >= 0 && layout.panel.right <= 390, JSON.stringify(layout.panel));
    assert.ok(Math.abs(layout.panel.bottom - 844) < 1 && layout.panel.top > 844 / 3, `not a bottom sheet: ${JSON.stringify(layout.panel)}`);
    assert.deepEqual(layout.small, [], 'touch targets under 44 px');
    await page.screenshot({ path: path.join(SHOTS, 'viewer-phone.png') });
    // The sheet folds away, leaving the map.
    await page.tap('#sheet-toggle');
    assert.equal(await page.isVisible('#panel-body'), false);
    // A long press on the map lists the nearest services while the finger is still down.
    const spot = await emptySpot(page);
    assert.ok(spot, 'no empty spot on the map');
    const cdp = await context.newCDPSession(page);
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [{ x: spot.x, y: spot.y }] });
    await nearestDone(page, 0);
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
    await page.tap('#sheet-toggle');
    const listed = await listedIds(page);
    const lngLat = await page.evaluate(() => document.querySelector('#nearest-origin').textContent);
    assert.equal(listed.length, 5, lngLat);
    assertOnlyFaro(seen);
    await context.close();
  });
});
