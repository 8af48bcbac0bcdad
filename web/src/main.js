// faro's map viewer: faro's own style and tiles, a legend with layer toggles and a kind filter,
// a search over service names, popups, nearest services from a click, a long-press or the
// device's position, sign-in with a bearer token for the restricted layers, and the coverage
// panel (a per-territory table, and gaps, H3 hexagons and uncovered records from /coverage/*).
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
  addCoverageLayers();
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
  renderCoverageKinds();
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
  renderCoverageControls();
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
  clearCoverage();
  await reloadStyle();
});

// ---- coverage -----------------------------------------------------------------------------
//
// The planner's coverage panel: service kinds, radius, month and opening time; the
// per-territory table of `/coverage`; on the map the gaps of `/coverage/gaps`, optionally the
// H3 cells of `/coverage/hexes` coloured by distance, and (signed in only: faro answers 401 to
// anyone else) the uncovered settlements and worksites of `/coverage/uncovered`. All GeoJSON,
// drawn by MapLibre.

/** The panel's default H3 resolution: about 480 cells (some 300 kB) over Treviso's four
 *  territories, against 23,000 cells (13 MB) at resolution 9, which faro refuses anyway
 *  beyond its cap on cells per answer. */
const COVERAGE_RESOLUTION = 7;
const EMPTY = { type: 'FeatureCollection', features: [] };

const coverage = {
  kinds: null, // the kinds chosen (null until the style's kinds are known: then all)
  report: null, // the last /coverage answer
  gaps: EMPTY,
  hexes: EMPTY,
  uncovered: EMPTY,
  radius_m: null,
  runs: 0,
  asked: 0, // a counter: an answer to an older question is dropped
};

function addCoverageLayers() {
  const before = ['nearest-lines', 'services-marker'].find((id) => map.getLayer(id));
  map.addSource('coverage-hexes', { type: 'geojson', data: coverage.hexes });
  map.addSource('coverage-gaps', { type: 'geojson', data: coverage.gaps });
  map.addSource('coverage-uncovered', { type: 'geojson', data: coverage.uncovered });
  const r = coverage.radius_m ?? 15000;
  map.addLayer({
    id: 'coverage-hexes-fill', type: 'fill', source: 'coverage-hexes',
    paint: {
      'fill-color': ['case', ['==', ['get', 'distance_m'], null], '#7f7f7f',
        ['interpolate', ['linear'], ['get', 'distance_m'], 0, '#1a9850', r * 0.5, '#91cf60', r, '#fee08b', r * 1.5, '#fc8d59', r * 2, '#d73027']],
      'fill-opacity': 0.5,
    },
  }, before);
  map.addLayer({
    id: 'coverage-gaps-fill', type: 'fill', source: 'coverage-gaps',
    paint: { 'fill-color': '#b2182b', 'fill-opacity': 0.28 },
  }, before);
  map.addLayer({
    id: 'coverage-gaps-outline', type: 'line', source: 'coverage-gaps',
    paint: { 'line-color': '#8a0f1f', 'line-width': 1.5 },
  }, before);
  map.addLayer({
    id: 'coverage-uncovered-circle', type: 'circle', source: 'coverage-uncovered',
    paint: {
      'circle-color': ['match', ['get', 'collection'], 'worksites', '#8c6d31', '#e7298a'],
      'circle-radius': 5, 'circle-stroke-color': '#ffffff', 'circle-stroke-width': 1.5,
    },
  });
}

function setCoverageData() {
  map.getSource('coverage-gaps')?.setData(coverage.gaps);
  map.getSource('coverage-hexes')?.setData(coverage.hexes);
  map.getSource('coverage-uncovered')?.setData(coverage.uncovered);
  if (map.getLayer('coverage-hexes-fill') && coverage.radius_m) {
    const r = coverage.radius_m;
    map.setPaintProperty('coverage-hexes-fill', 'fill-color', ['case', ['==', ['get', 'distance_m'], null], '#7f7f7f',
      ['interpolate', ['linear'], ['get', 'distance_m'], 0, '#1a9850', r * 0.5, '#91cf60', r, '#fee08b', r * 1.5, '#fc8d59', r * 2, '#d73027']]);
  }
}

function setCoverageStatus(message, isError = false) {
  const node = $('coverage-status');
  node.textContent = message ?? '';
  node.classList.toggle('error', Boolean(isError));
}

function renderCoverageKinds() {
  const list = $('coverage-kinds');
  if (coverage.kinds === null && state.kinds.length) coverage.kinds = new Set(state.kinds.map((k) => k.kind));
  list.replaceChildren();
  for (const { kind } of state.kinds) {
    list.append(el('li', {}, el('label', {},
      el('input', {
        type: 'checkbox', checked: coverage.kinds?.has(kind), 'data-kind': kind,
        onchange: (e) => (e.target.checked ? coverage.kinds.add(kind) : coverage.kinds.delete(kind)),
      }),
      swatch(kind), el('span', {}, t(`kind_${kind}`)))));
  }
}

function renderCoverageControls() {
  const months = $('coverage-month');
  const current = months.value;
  const name = (m) => new Intl.DateTimeFormat(state.lang, { month: 'long', timeZone: 'UTC' }).format(Date.UTC(2026, m - 1, 15));
  months.replaceChildren(el('option', { value: '' }, t('coverage_any_month')),
    ...Array.from({ length: 12 }, (_, i) => el('option', { value: String(i + 1), selected: String(i + 1) === current }, name(i + 1))));
  const signedIn = Boolean(state.token);
  const box = $('coverage-uncovered');
  box.disabled = !signedIn;
  if (!signedIn) box.checked = false;
  box.closest('label').title = signedIn ? '' : t('coverage_uncovered_sign_in');
  $('coverage-at-label').hidden = $('coverage-when').value !== 'at';
}

/** Europe/Rome's offset from UTC at the instant `utcMs`, as `+01:00`. */
function romeOffset(utcMs) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-GB', {
    timeZone: 'Europe/Rome', hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit',
  }).formatToParts(utcMs).map((p) => [p.type, p.value]));
  const wall = Date.UTC(+parts.year, parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  const minutes = Math.round((wall - utcMs) / 60000);
  const abs = Math.abs(minutes);
  return `${minutes < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/** A `datetime-local` value read as Rome's wall time, in RFC 3339 with Rome's offset. */
function romeTime(local) {
  const [date, time = '00:00'] = local.split('T');
  const [y, mo, d] = date.split('-').map(Number);
  const [h, mi] = time.split(':').map(Number);
  const asUtc = Date.UTC(y, mo - 1, d, h, mi);
  // The offset at the instant that wall time names (twice: near a change of offset the
  // first guess may be an hour off).
  let offset = romeOffset(asUtc);
  const toMs = (o) => asUtc - (o[0] === '-' ? -1 : 1) * (Number(o.slice(1, 3)) * 60 + Number(o.slice(4))) * 60000;
  offset = romeOffset(toMs(offset));
  return `${date}T${time.slice(0, 5)}:00${offset}`;
}

/** The query of the panel's choices, or an error message. */
function coverageParams() {
  const kinds = state.kinds.map((k) => k.kind).filter((k) => coverage.kinds?.has(k));
  if (kinds.length === 0) return { error: t('coverage_no_kind') };
  const km = Number($('coverage-radius').value);
  if (!Number.isFinite(km) || km < 0.001 || km > 100) return { error: t('coverage_bad_radius') };
  const params = new URLSearchParams({ kind: kinds.join(','), radius_m: String(Math.round(km * 1000 * 1000) / 1000) });
  if ($('coverage-month').value) params.set('month', $('coverage-month').value);
  const when = $('coverage-when').value;
  if (when === 'now') params.set('open_at', 'now');
  if (when === 'at') {
    if (!$('coverage-at').value) return { error: t('coverage_bad_time') };
    params.set('open_at', romeTime($('coverage-at').value));
  }
  return { params };
}

/** GET with the caller's token; the answer's JSON, or an error carrying faro's message. */
async function coverageGet(path, params) {
  const res = await fetch(`${path}?${params}`, { headers: authHeaders() });
  if (res.status === 401) throw new Unauthorized(path);
  if (!res.ok) {
    let message = `${res.status}`;
    try {
      const body = await res.json();
      if (body.message) message = `${res.status}: ${body.message}`;
    } catch { /* not JSON */ }
    throw new Error(message);
  }
  return res.json();
}

async function runCoverage() {
  const { params, error } = coverageParams();
  if (error) {
    setCoverageStatus(error, true);
    return;
  }
  const asked = ++coverage.asked;
  const current = () => asked === coverage.asked;
  setCoverageStatus(t('coverage_working'));
  const withHexes = $('coverage-hexes').checked;
  const withUncovered = $('coverage-uncovered').checked && Boolean(state.token);
  const hexParams = new URLSearchParams(params);
  hexParams.set('resolution', $('coverage-resolution').value);
  const uncovered = (collection) => {
    const p = new URLSearchParams(params);
    p.set('collection', collection);
    return coverageGet('/coverage/uncovered', p).then((fc) => fc.features.map((f) => ({ ...f, properties: { ...f.properties, collection } })));
  };
  const [report, gaps, hexes, settlements, worksites] = await Promise.allSettled([
    coverageGet('/coverage', params),
    coverageGet('/coverage/gaps', params),
    withHexes ? coverageGet('/coverage/hexes', hexParams) : Promise.resolve(EMPTY),
    withUncovered ? uncovered('settlements') : Promise.resolve([]),
    withUncovered ? uncovered('worksites') : Promise.resolve([]),
  ]);
  if (!current()) return;
  const failed = [report, gaps, hexes, settlements, worksites].filter((r) => r.status === 'rejected').map((r) => r.reason);
  if (failed.some((e) => e instanceof Unauthorized) && state.token) {
    // The token went while in use: say so, and fall back to anonymous (the table then has
    // no settlement or worksite figure).
    signOutAfter401();
    clearCoverage();
    reloadStyle();
    setCoverageStatus(t('unauthorized'), true);
    return;
  }
  coverage.radius_m = Number(params.get('radius_m'));
  coverage.report = report.status === 'fulfilled' ? report.value : null;
  coverage.gaps = gaps.status === 'fulfilled' ? gaps.value : EMPTY;
  coverage.hexes = hexes.status === 'fulfilled' ? hexes.value : EMPTY;
  coverage.uncovered = {
    type: 'FeatureCollection',
    features: [settlements, worksites].flatMap((r) => (r.status === 'fulfilled' ? r.value : [])),
  };
  setCoverageData();
  renderCoverageTable();
  renderCoverageLegend();
  const notes = [];
  if (hexes.status === 'rejected') notes.push(t('coverage_hexes_failed', { reason: hexes.reason.message }));
  const other = [report, gaps, settlements, worksites].find((r) => r.status === 'rejected');
  if (other) notes.push(t('request_failed', { reason: other.reason.message }));
  if (notes.length) setCoverageStatus(notes.join(' '), true);
  else if (!state.token) setCoverageStatus(t('coverage_anonymous'));
  else setCoverageStatus('');
  coverage.runs += 1;
  document.documentElement.dataset.coverageRuns = String(coverage.runs);
}

function clearCoverage() {
  coverage.asked += 1;
  coverage.report = null;
  coverage.gaps = EMPTY;
  coverage.hexes = EMPTY;
  coverage.uncovered = EMPTY;
  setCoverageData();
  renderCoverageTable();
  renderCoverageLegend();
  setCoverageStatus('');
}

const number = (n, digits = 0) => new Intl.NumberFormat(state.lang, { maximumFractionDigits: digits }).format(n);

/** `covered / total`, or a dash when faro gives the caller no such figure. */
function demandCell(figures, size) {
  if (!figures) {
    return el('td', { 'data-field': size, title: t('coverage_demand_hidden') }, el('span', { 'aria-hidden': 'true' }, '—'),
      el('span', { class: 'sr-only' }, t('coverage_demand_hidden')));
  }
  const covered = figures[`${size}_covered`];
  const total = figures[`${size}_total`];
  return el('td', { 'data-field': size, 'data-covered': covered, 'data-total': total }, `${number(covered)} / ${number(total)}`);
}

function coverageRow(f, isTotal) {
  const head = el('th', { scope: 'row' }, isTotal ? t('coverage_total') : f.name ?? f.id);
  return el('tr', { 'data-territory': isTotal ? null : f.id, 'data-total': isTotal || null },
    head,
    el('td', { 'data-field': 'covered_share', 'data-value': f.covered_share, title: t('coverage_share_title', { covered: number(f.covered_area_km2, 1), area: number(f.area_km2, 1) }) },
      `${number(100 * f.covered_share, 1)} %`),
    demandCell(f.settlements, 'people'),
    demandCell(f.worksites, 'workers'));
}

function renderCoverageTable() {
  const table = $('coverage-table');
  const report = coverage.report;
  table.hidden = !report;
  if (!report) return;
  $('coverage-caption').textContent = t('coverage_caption', { radius: formatDistance(report.radius_m) });
  table.tBodies[0].replaceChildren(...report.territories.map((f) => coverageRow(f, false)));
  table.tFoot.replaceChildren(coverageRow(report.total, true));
}

function renderCoverageLegend() {
  const legend = $('coverage-legend');
  const any = coverage.report !== null;
  legend.hidden = !any;
  if (!any) return;
  const item = (colour, text, round = false) => el('span', { class: 'cov-item' },
    el('span', { class: `swatch${round ? '' : ' area'}`, 'aria-hidden': 'true', style: { background: colour } }), text);
  const items = [item('#b2182b', t('coverage_gap', { n: coverage.gaps.features.length }))];
  if (coverage.hexes.features.length) {
    items.push(el('span', { class: 'cov-item cov-ramp' },
      el('span', { class: 'ramp', 'aria-hidden': 'true' }),
      t('coverage_hex_legend', { n: number(coverage.hexes.features.length), radius: formatDistance(coverage.radius_m) })));
  }
  if (coverage.uncovered.features.length) {
    const count = (c) => coverage.uncovered.features.filter((f) => f.properties.collection === c).length;
    items.push(item('#e7298a', t('coverage_uncovered_settlements', { n: number(count('settlements')) }), true));
    items.push(item('#8c6d31', t('coverage_uncovered_worksites', { n: number(count('worksites')) }), true));
  }
  legend.replaceChildren(...items);
}

$('coverage-form').addEventListener('submit', (e) => {
  e.preventDefault();
  runCoverage();
});
$('coverage-clear').addEventListener('click', clearCoverage);
$('coverage-when').addEventListener('change', () => {
  $('coverage-at-label').hidden = $('coverage-when').value !== 'at';
});
$('coverage').addEventListener('toggle', padForPanel);

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
  renderCoverageTable();
  renderCoverageLegend();
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
