// faro's map viewer: faro's own style and tiles, a legend with layer toggles and a kind filter,
// a search over service names, popups, nearest services from a click, a long-press or the
// device's position, and sign-in with a bearer token for the restricted layers.
// Every request goes to faro's origin (plus the base map, when faro is configured with one).

import * as maplibregl from 'maplibre-gl';
import './viewer.css';
import { LANGUAGES, initialLanguage, translate } from './i18n.js';

/* global FARO_WORKER_URL */
maplibregl.setWorkerUrl(new URL(FARO_WORKER_URL, window.location.href).href);

const TOKEN_KEY = 'faro.token';
const LANG_KEY = 'faro.language';
const LONG_PRESS_MS = 600;

const state = {
  lang: initialLanguage(safeStorage(localStorage)?.getItem(LANG_KEY), navigator.languages),
  token: safeStorage(sessionStorage)?.getItem(TOKEN_KEY) ?? null,
  style: null,
  kinds: [],
  hiddenKinds: new Set(),
  hiddenGroups: new Set(),
  services: new Map(),
  origin: null,
  nearest: [],
  popup: null,
};

const $ = (id) => document.getElementById(id);
const t = (key, vars) => translate(state.lang, key, vars);

function safeStorage(storage) {
  try {
    return storage;
  } catch {
    return null;
  }
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name === 'style') Object.assign(node.style, value);
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null) node.append(child);
  }
  return node;
}

function sameOrigin(url) {
  try {
    return new URL(url, window.location.href).origin === window.location.origin;
  } catch {
    return false;
  }
}

function authHeaders() {
  return state.token ? { Authorization: `Bearer ${state.token}` } : {};
}

function setStatus(message, isError = false) {
  const node = $('status');
  node.textContent = message ?? '';
  node.classList.toggle('error', Boolean(isError));
}

class Unauthorized extends Error {}

/** GET a JSON document from faro with the caller's token; 401 throws `Unauthorized`. */
async function getJson(path, token = state.token) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const res = await fetch(path, { headers });
  if (res.status === 401) throw new Unauthorized(path);
  if (!res.ok) throw new Error(`${res.status} ${path}`);
  return res.json();
}

function signOutAfter401() {
  state.token = null;
  safeStorage(sessionStorage)?.removeItem(TOKEN_KEY);
  setStatus(t('unauthorized'), true);
}

// ---- the style ---------------------------------------------------------------------------

const GROUPS = ['territories', 'services', 'settlements', 'worksites'];
const GROUP_SWATCH = {
  territories: { background: '#b8c9a3', borderColor: '#5b7042', area: true },
  services: { background: '#2c7bb6' },
  settlements: { background: '#e7298a' },
  worksites: { background: '#8c6d31' },
};

function groupOf(layerId) {
  if (layerId.startsWith('province-')) return 'territories';
  return GROUPS.find((g) => layerId.startsWith(g)) ?? null;
}

function basemapUrl() {
  const meta = document.querySelector('meta[name="faro-basemap"]');
  const url = meta?.content?.trim();
  return url && !url.startsWith('%') ? url : null;
}

/** faro's style for the current caller, with the configured base map under faro's layers. */
async function loadStyle() {
  let style;
  try {
    style = await getJson('/style.json');
  } catch (e) {
    if (!(e instanceof Unauthorized)) throw e;
    signOutAfter401();
    style = await getJson('/style.json', null);
  }
  const base = basemapUrl();
  if (base) {
    style.sources.basemap = { type: 'raster', tiles: [base], tileSize: 256, attribution: new URL(base).host };
    const at = style.layers.findIndex((l) => l.id === 'background') + 1;
    style.layers.splice(at, 0, { id: 'basemap', type: 'raster', source: 'basemap' });
  }
  addServiceClusters(style);
  state.style = style;
  state.kinds = style.metadata?.['faro:service_kinds'] ?? [];
  return style;
}

/** Below this zoom services are drawn from a clustered GeoJSON source (the services the caller
 *  may see, from `/collections/services/items`, less the kinds filtered out), so overlapping
 *  markers merge into circles with their counts; from it on, from faro's tiles. */
const CLUSTER_BELOW = 13;

function addServiceClusters(style) {
  const marker = style.layers.find((l) => l.id === 'services-marker');
  const symbol = style.layers.find((l) => l.id === 'services-symbol');
  if (!marker || !symbol) return;
  style.sources['services-geo'] = {
    type: 'geojson', data: { type: 'FeatureCollection', features: [] },
    cluster: true, clusterRadius: 30, clusterMaxZoom: CLUSTER_BELOW - 1,
  };
  const fromGeo = ({ 'source-layer': _, ...layer }, id) => ({
    ...layer, id, source: 'services-geo', maxzoom: CLUSTER_BELOW, filter: ['!', ['has', 'point_count']],
  });
  const font = symbol.layout?.['text-font'];
  const clusters = [
    {
      id: 'services-geo-cluster', type: 'circle', source: 'services-geo', filter: ['has', 'point_count'],
      paint: {
        'circle-color': '#1f5f8f', 'circle-stroke-color': '#ffffff', 'circle-stroke-width': 2,
        'circle-radius': ['interpolate', ['linear'], ['get', 'point_count'], 2, 13, 20, 20, 100, 28],
      },
    },
    {
      id: 'services-geo-cluster-count', type: 'symbol', source: 'services-geo', filter: ['has', 'point_count'],
      layout: { 'text-field': ['get', 'point_count_abbreviated'], 'text-size': 13, 'text-allow-overlap': true, ...(font ? { 'text-font': font } : {}) },
      paint: { 'text-color': '#ffffff' },
    },
  ];
  marker.minzoom = CLUSTER_BELOW;
  symbol.minzoom = CLUSTER_BELOW;
  style.layers.splice(style.layers.indexOf(symbol) + 1, 0,
    fromGeo(marker, 'services-geo-marker'), fromGeo(symbol, 'services-geo-symbol'), ...clusters);
}

function servicesGeoJson() {
  return {
    type: 'FeatureCollection',
    features: [...state.services.values()]
      .filter((f) => f.geometry?.type === 'Point' && !state.hiddenKinds.has(f.properties.kind))
      .map((f) => ({ type: 'Feature', id: f.id, geometry: f.geometry, properties: { id: f.id, name: f.properties.name, kind: f.properties.kind } })),
  };
}

function updateServiceClusters() {
  map.getSource('services-geo')?.setData(servicesGeoJson());
}

function layerIds() {
  return (state.style?.layers ?? []).map((l) => l.id);
}

function groupsPresent() {
  const present = new Set(layerIds().map(groupOf).filter(Boolean));
  return GROUPS.filter((g) => present.has(g));
}

function applyFilters() {
  if (!map.getStyle()) return;
  const hiddenKinds = [...state.hiddenKinds];
  for (const id of layerIds()) {
    const group = groupOf(id);
    if (!group || !map.getLayer(id)) continue;
    let visible = !state.hiddenGroups.has(group);
    if (id.startsWith('services_clusters') && hiddenKinds.length > 0) visible = false;
    map.setLayoutProperty(id, 'visibility', visible ? 'visible' : 'none');
    if (id === 'services-marker' || id === 'services-symbol') {
      map.setFilter(id, hiddenKinds.length === 0 ? null : ['!', ['in', ['get', 'kind'], ['literal', hiddenKinds]]]);
    }
  }
}

// ---- the map -----------------------------------------------------------------------------

const style = await loadStyle().catch((e) => {
  setStatus(t('request_failed', { reason: e.message }), true);
  return { version: 8, sources: {}, layers: [] };
});

const map = new maplibregl.Map({
  container: 'map',
  style,
  // Given here too: the style's own camera is dropped once the padding below moves the map.
  center: style.center ?? [12.24, 45.75],
  zoom: style.zoom ?? 9,
  attributionControl: { compact: true },
  transformRequest: (url) => (sameOrigin(url) && state.token ? { url, headers: authHeaders() } : { url }),
});
// For the browser tests (and the curious): the map, and how many times it has gone idle.
window.faroMap = map;
let idles = 0;
map.on('idle', () => {
  idles += 1;
  document.documentElement.dataset.idle = String(idles);
});
// The panel covers the map's side on a desk and its bottom on a phone; keep the view's centre
// in the part one can see.
const wide = window.matchMedia('(min-width: 701px)');
function padForPanel() {
  const side = LANGUAGES[state.lang].dir === 'rtl' ? 'right' : 'left';
  const padding = { left: 0, right: 0, top: 0, bottom: 0 };
  if (wide.matches) padding[side] = $('panel').offsetWidth + 12;
  else padding.bottom = $('panel').offsetHeight;
  map.setPadding(padding);
}
padForPanel();
wide.addEventListener('change', padForPanel);
map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');
map.addControl(new maplibregl.ScaleControl(), 'bottom-right');

map.on('error', (e) => {
  if (e.error?.status === 401) {
    // The token was revoked or expired while in use: say so, and fall back to anonymous.
    if (state.token) {
      signOutAfter401();
      reloadStyle();
    }
    return;
  }
  console.warn('map:', e.error?.message ?? e);
});

map.on('style.load', () => {
  map.addSource('nearest', { type: 'geojson', data: nearestGeoJson() });
  const before = map.getLayer('services-marker') ? 'services-marker' : undefined;
  map.addLayer({
    id: 'nearest-lines', type: 'line', source: 'nearest', filter: ['==', ['geometry-type'], 'LineString'],
    paint: { 'line-color': '#0b5394', 'line-width': 2.5, 'line-dasharray': [2, 1] },
  }, before);
  map.addLayer({
    id: 'nearest-origin', type: 'circle', source: 'nearest', filter: ['==', ['geometry-type'], 'Point'],
    paint: { 'circle-color': '#ffffff', 'circle-radius': 7, 'circle-stroke-color': '#0b5394', 'circle-stroke-width': 3 },
  });
  applyFilters();
  updateServiceClusters();
  renderLegend();
});

async function reloadStyle() {
  const next = await loadStyle();
  map.setStyle(next, { diff: false });
  state.popup?.remove();
  await loadServices();
  renderAuth();
}

// ---- services (search and popups) ---------------------------------------------------------

async function loadServices() {
  state.services = new Map();
  try {
    const fc = await getJson('/collections/services/items?limit=10000');
    for (const f of fc.features ?? []) state.services.set(f.id, f);
  } catch (e) {
    if (e instanceof Unauthorized) signOutAfter401();
    else setStatus(t('request_failed', { reason: e.message }), true);
  }
  renderSpokenLanguages();
  updateServiceClusters();
}

function kindInfo(kind) {
  return state.kinds.find((k) => k.kind === kind) ?? { kind, colour: '#878787', symbol: '?' };
}

function swatch(kind) {
  const info = kindInfo(kind);
  return el('span', { class: 'swatch', 'aria-hidden': 'true', style: { background: info.colour } }, info.symbol);
}

function normalise(text) {
  return String(text ?? '').normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

function renderSearch() {
  const query = normalise($('search').value.trim());
  const list = $('search-results');
  list.replaceChildren();
  if (!query) return;
  const hits = [...state.services.values()]
    .filter((f) => normalise(f.properties.name).includes(query) && !state.hiddenKinds.has(f.properties.kind))
    .slice(0, 8);
  if (hits.length === 0) list.append(el('li', { class: 'hint' }, t('search_none')));
  for (const f of hits) {
    list.append(el('li', {}, el('button', { type: 'button', onclick: () => showService(f.id) },
      swatch(f.properties.kind), el('span', { class: 'name' }, f.properties.name))));
  }
}

function languagesText(value) {
  const codes = Array.isArray(value) ? value : String(value ?? '').split(/[,;\s]+/).filter(Boolean);
  if (codes.length === 0) return null;
  let names;
  try {
    names = new Intl.DisplayNames([state.lang], { type: 'language' });
  } catch {
    names = null;
  }
  return codes.map((c) => names?.of(c) ?? c).join(', ');
}

/** Whether faro counts the service as open now: it is among the open services at its spot. */
async function openNow(feature) {
  const [lon, lat] = feature.geometry.coordinates;
  const params = new URLSearchParams({ lon, lat, k: '100', max_distance_m: '1', open_at: 'now', kind: feature.properties.kind });
  const fc = await getJson(`/nearest?${params}`);
  return (fc.features ?? []).some((f) => f.id === feature.id);
}

function row(label, value) {
  if (value === null || value === undefined || value === '') return [el('dt', {}, label), el('dd', {}, t('unknown'))];
  return [el('dt', {}, label), el('dd', {}, value)];
}

function servicePopup(feature) {
  const p = feature.properties;
  const hours = el('span', {}, p.opening_hours ?? t('unknown'));
  if (p.opening_hours) {
    const badge = el('span', {});
    hours.append(' ', badge);
    openNow(feature).then((open) => {
      badge.textContent = `(${open ? t('open_now') : t('closed_now')})`;
      badge.className = open ? 'open' : 'closed';
    }).catch(() => {});
  }
  const phone = p.phone ? el('a', { href: `tel:${p.phone.replace(/[^+\d]/g, '')}` }, p.phone) : null;
  return el('div', { class: 'popup', dir: 'auto' },
    el('h3', {}, p.name),
    el('dl', {},
      row(t('kind'), el('span', {}, swatch(p.kind), ' ', t(`kind_${p.kind}`))),
      row(t('organization'), p.organization),
      row(t('address'), p.address),
      row(t('opening_hours'), hours),
      row(t('languages'), languagesText(p.languages)),
      row(t('phone'), phone),
      row(t('last_verified'), p.last_verified)));
}

function otherPopup(feature, group) {
  const p = feature.properties;
  const rows = group === 'settlements'
    ? [row(t('population'), p.population_estimate), row(t('season'), p.season)]
    : [row(t('kind'), p.kind), row(t('workers'), p.workers_estimate)];
  return el('div', { class: 'popup', dir: 'auto' }, el('h3', {}, p.name ?? t(`layer_${group}`)), el('dl', {}, rows));
}

function openPopup(lngLat, content) {
  state.popup?.remove();
  state.popup = new maplibregl.Popup({ maxWidth: '20rem', closeButton: true })
    .setLngLat(lngLat).setDOMContent(content).addTo(map);
}

function showService(id) {
  const f = state.services.get(id);
  if (!f) return;
  map.flyTo({ center: f.geometry.coordinates, zoom: Math.max(map.getZoom(), 14) });
  openPopup(f.geometry.coordinates, servicePopup(f));
}

// ---- nearest ------------------------------------------------------------------------------

function nearestGeoJson() {
  if (!state.origin) return { type: 'FeatureCollection', features: [] };
  const origin = [state.origin.lng, state.origin.lat];
  return {
    type: 'FeatureCollection',
    features: [
      { type: 'Feature', properties: {}, geometry: { type: 'Point', coordinates: origin } },
      ...state.nearest.map((f, rank) => ({
        type: 'Feature', properties: { id: f.id, rank },
        geometry: { type: 'LineString', coordinates: [origin, f.geometry.coordinates] },
      })),
    ],
  };
}

function formatDistance(metres) {
  const fmt = (n, digits) => new Intl.NumberFormat(state.lang, { maximumFractionDigits: digits }).format(n);
  return metres < 1000 ? `${fmt(metres, 0)} m` : `${fmt(metres / 1000, metres < 10000 ? 1 : 0)} km`;
}

function renderNearest() {
  const list = $('nearest-results');
  list.replaceChildren();
  $('nearest-origin').textContent = state.origin
    ? t('nearest_from', { lat: state.origin.lat.toFixed(4), lon: state.origin.lng.toFixed(4) }) : '';
  if (state.origin && state.nearest.length === 0) list.append(el('li', { class: 'hint' }, t('nearest_none')));
  for (const f of state.nearest) {
    list.append(el('li', { 'data-id': f.id }, el('button', {
      type: 'button',
      onclick: () => {
        map.flyTo({ center: f.geometry.coordinates, zoom: Math.max(map.getZoom(), 14) });
        openPopup(f.geometry.coordinates, servicePopup(state.services.get(f.id) ?? f));
      },
    }, swatch(f.properties.kind), el('span', { class: 'name' }, f.properties.name),
    el('span', { class: 'dist', title: t('distance') }, formatDistance(f.properties.distance_m)))));
  }
  map.getSource('nearest')?.setData(nearestGeoJson());
}

let nearestRuns = 0;

async function findNearest(lngLat) {
  const shown = state.kinds.map((k) => k.kind).filter((k) => !state.hiddenKinds.has(k));
  state.origin = { lng: lngLat.lng, lat: lngLat.lat };
  if (shown.length === 0) {
    state.nearest = [];
    renderNearest();
    return;
  }
  const params = new URLSearchParams({ lon: lngLat.lng.toFixed(6), lat: lngLat.lat.toFixed(6), k: $('k').value });
  if (shown.length < state.kinds.length) params.set('kind', shown.join(','));
  if ($('open-now').checked) params.set('open_at', 'now');
  if ($('spoken').value) params.set('language', $('spoken').value);
  try {
    const fc = await getJson(`/nearest?${params}`);
    state.nearest = fc.features ?? [];
    setStatus('');
  } catch (e) {
    state.nearest = [];
    if (e instanceof Unauthorized) {
      signOutAfter401();
      reloadStyle();
    } else {
      setStatus(t('request_failed', { reason: e.message }), true);
    }
  }
  renderNearest();
  nearestRuns += 1;
  document.documentElement.dataset.nearestRuns = String(nearestRuns);
}

function interactiveLayers() {
  return layerIds().filter((id) => /^(services-marker|services-geo-marker|services-geo-cluster|services_clusters-circle|settlements-|worksites-)/.test(id)
    && !id.endsWith('-count'));
}

map.on('click', (e) => {
  const hit = map.queryRenderedFeatures(e.point, { layers: interactiveLayers().filter((id) => map.getLayer(id)) })[0];
  if (!hit) {
    findNearest(e.lngLat);
    return;
  }
  const group = groupOf(hit.layer.id);
  if (hit.layer.id === 'services-geo-cluster') {
    map.getSource('services-geo').getClusterExpansionZoom(hit.properties.cluster_id)
      .then((zoom) => map.easeTo({ center: hit.geometry.coordinates, zoom }))
      .catch(() => map.easeTo({ center: e.lngLat, zoom: map.getZoom() + 2 }));
  } else if (hit.layer.id.includes('clusters')) {
    map.easeTo({ center: e.lngLat, zoom: map.getZoom() + 2 });
  } else if (group === 'services') {
    openPopup(e.lngLat, servicePopup(state.services.get(hit.properties.id) ?? hit));
  } else {
    openPopup(e.lngLat, otherPopup(hit, group));
  }
});

let pressTimer = null;
const cancelPress = () => {
  clearTimeout(pressTimer);
  pressTimer = null;
};
map.on('touchstart', (e) => {
  cancelPress();
  if (e.originalEvent.touches.length !== 1) return;
  const { lngLat } = e;
  pressTimer = setTimeout(() => findNearest(lngLat), LONG_PRESS_MS);
});
for (const type of ['touchend', 'touchcancel', 'touchmove', 'movestart']) map.on(type, cancelPress);

map.on('mousemove', (e) => {
  const ids = interactiveLayers().filter((id) => map.getLayer(id));
  map.getCanvas().style.cursor = map.queryRenderedFeatures(e.point, { layers: ids }).length ? 'pointer' : '';
});

$('locate').addEventListener('click', () => {
  if (!navigator.geolocation) {
    setStatus(t('geolocation_failed', { reason: '—' }), true);
    return;
  }
  navigator.geolocation.getCurrentPosition(
    (pos) => {
      const lngLat = { lng: pos.coords.longitude, lat: pos.coords.latitude };
      map.flyTo({ center: [lngLat.lng, lngLat.lat], zoom: Math.max(map.getZoom(), 12) });
      findNearest(lngLat);
    },
    (err) => setStatus(t('geolocation_failed', { reason: err.message }), true),
    { enableHighAccuracy: true, timeout: 15000 },
  );
});
for (const id of ['k', 'open-now', 'spoken']) {
  $(id).addEventListener('change', () => state.origin && findNearest(state.origin));
}

// ---- legend, toggles and filter -----------------------------------------------------------

function renderLegend() {
  const layers = $('layers');
  layers.replaceChildren();
  for (const group of groupsPresent()) {
    const look = GROUP_SWATCH[group];
    layers.append(el('li', {}, el('label', {},
      el('input', {
        type: 'checkbox', checked: !state.hiddenGroups.has(group), 'data-group': group,
        onchange: (e) => {
          if (e.target.checked) state.hiddenGroups.delete(group);
          else state.hiddenGroups.add(group);
          applyFilters();
        },
      }),
      el('span', { class: `swatch${look.area ? ' area' : ''}`, 'aria-hidden': 'true', style: { background: look.background, borderColor: look.borderColor } }),
      el('span', {}, t(`layer_${group}`)))));
  }
  const kinds = $('kinds');
  kinds.replaceChildren();
  for (const { kind } of state.kinds) {
    kinds.append(el('li', {}, el('label', {},
      el('input', {
        type: 'checkbox', checked: !state.hiddenKinds.has(kind), 'data-kind': kind,
        onchange: (e) => setKindVisible(kind, e.target.checked),
      }),
      swatch(kind), el('span', {}, t(`kind_${kind}`)))));
  }
}

function setKindVisible(kind, visible) {
  if (visible) state.hiddenKinds.delete(kind);
  else state.hiddenKinds.add(kind);
  applyFilters();
  updateServiceClusters();
  renderSearch();
  if (state.origin) findNearest(state.origin);
}

function setAllKinds(visible) {
  state.hiddenKinds = visible ? new Set() : new Set(state.kinds.map((k) => k.kind));
  applyFilters();
  updateServiceClusters();
  renderLegend();
  renderSearch();
  if (state.origin) findNearest(state.origin);
}
$('kinds-all').addEventListener('click', () => setAllKinds(true));
$('kinds-none').addEventListener('click', () => setAllKinds(false));
$('search').addEventListener('input', renderSearch);

function renderSpokenLanguages() {
  const select = $('spoken');
  const current = select.value;
  const codes = new Set();
  for (const f of state.services.values()) {
    for (const c of f.properties.languages ?? []) codes.add(c);
  }
  select.replaceChildren(el('option', { value: '' }, t('nearest_any_language')),
    ...[...codes].sort().map((c) => el('option', { value: c, selected: c === current }, languagesText([c]))));
}

// ---- sign in ------------------------------------------------------------------------------

function renderAuth() {
  const signedIn = Boolean(state.token);
  $('sign-in').hidden = signedIn;
  $('sign-out').hidden = !signedIn;
  $('auth-state').textContent = signedIn ? t('signed_in') : t('signed_out');
}

$('sign-in').addEventListener('submit', async (e) => {
  e.preventDefault();
  const token = $('token').value.trim();
  if (!token) return;
  try {
    await getJson('/style.json', token);
  } catch (err) {
    setStatus(err instanceof Unauthorized ? t('unauthorized') : t('request_failed', { reason: err.message }), true);
    return;
  }
  state.token = token;
  safeStorage(sessionStorage)?.setItem(TOKEN_KEY, token);
  $('token').value = '';
  setStatus('');
  await reloadStyle();
});

$('sign-out').addEventListener('click', async () => {
  state.token = null;
  safeStorage(sessionStorage)?.removeItem(TOKEN_KEY);
  // Results seen while signed in may hold services an anonymous caller may not see.
  state.origin = null;
  state.nearest = [];
  renderNearest();
  await reloadStyle();
});

// ---- language and the phone sheet ---------------------------------------------------------

function applyLanguage() {
  const root = document.documentElement;
  root.lang = state.lang;
  root.dir = LANGUAGES[state.lang].dir;
  document.title = t('title');
  for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
  $('search').placeholder = t('search_placeholder');
  $('map').setAttribute('aria-label', t('title'));
  renderLegend();
  renderNearest();
  renderSearch();
  renderSpokenLanguages();
  renderAuth();
  padForPanel();
}

const langSelect = $('lang');
for (const [code, { name }] of Object.entries(LANGUAGES)) {
  langSelect.append(el('option', { value: code, selected: code === state.lang, lang: code }, name));
}
langSelect.addEventListener('change', () => {
  state.lang = langSelect.value;
  safeStorage(localStorage)?.setItem(LANG_KEY, state.lang);
  applyLanguage();
});

$('sheet-toggle').addEventListener('click', () => {
  const body = $('panel-body');
  body.hidden = !body.hidden;
  $('sheet-toggle').setAttribute('aria-expanded', String(!body.hidden));
  padForPanel();
});

applyLanguage();
await loadServices();
renderAuth();
