// The viewer's strings, one table per language. Italian is complete and is the fallback for
// English; Arabic has a few strings only (it proves the right-to-left layout) and falls back
// to English.

export const LANGUAGES = {
  it: { name: 'Italiano', dir: 'ltr' },
  en: { name: 'English', dir: 'ltr' },
  ar: { name: 'العربية', dir: 'rtl' },
};

const it = {
  title: 'faro – mappa della rete',
  subtitle: 'Rete territoriale contro lo sfruttamento lavorativo',
  panel_toggle: 'Pannello',
  language: 'Lingua',
  layers: 'Livelli',
  layer_territories: 'Territori',
  layer_services: 'Servizi',
  layer_settlements: 'Insediamenti informali',
  layer_worksites: 'Luoghi di lavoro',
  kinds: 'Tipi di servizio',
  kinds_all: 'Tutti',
  kinds_none: 'Nessuno',
  search: 'Cerca un servizio',
  search_placeholder: 'Nome del servizio',
  search_none: 'Nessun servizio trovato',
  nearest: 'Servizi più vicini',
  nearest_hint: 'Fai clic sulla mappa (o tieni premuto) per trovare i servizi più vicini.',
  nearest_here: 'Usa la mia posizione',
  nearest_k: 'Quanti',
  nearest_open: 'Solo aperti ora',
  nearest_language: 'Lingua parlata',
  nearest_any_language: 'Qualsiasi',
  nearest_none: 'Nessun servizio corrisponde ai filtri.',
  nearest_from: 'Dal punto {lat}, {lon}',
  geolocation_failed: 'Posizione non disponibile: {reason}',
  sign_in: 'Accedi',
  sign_out: 'Esci',
  token: 'Token di accesso',
  signed_in: 'Accesso come operatore: insediamenti e luoghi di lavoro visibili.',
  signed_out: 'Accesso anonimo: territori e servizi.',
  unauthorized: 'Token non valido o scaduto (401). Accesso non riuscito.',
  request_failed: 'Richiesta non riuscita: {reason}',
  kind: 'Tipo',
  organization: 'Ente',
  address: 'Indirizzo',
  opening_hours: 'Orari',
  open_now: 'aperto ora',
  closed_now: 'chiuso ora',
  languages: 'Lingue',
  phone: 'Telefono',
  last_verified: 'Verificato il',
  unknown: 'non indicato',
  population: 'Persone stimate',
  workers: 'Lavoratori stimati',
  season: 'Stagione',
  distance: 'distanza',
  legend: 'Legenda',
  cluster: 'Gruppo: il numero conta i servizi',
  close: 'Chiudi',
  kind_focal_point: 'Punto focale',
  kind_pas: 'PAS',
  kind_shelter: 'Struttura protetta',
  kind_help_desk: 'Sportello',
  kind_outreach_unit: 'Unità di strada',
  kind_job_centre: 'Centro per l’impiego',
  kind_labour_inspectorate: 'Ispettorato del lavoro',
  kind_prefecture: 'Prefettura',
  kind_reception_centre: 'Centro di accoglienza',
  kind_health: 'Salute',
  kind_legal_aid: 'Assistenza legale',
  kind_trade_union: 'Sindacato',
  kind_social_services: 'Servizi sociali',
  kind_other: 'Altro',
};

const en = {
  title: 'faro – network map',
  subtitle: 'Territorial network against labour exploitation',
  panel_toggle: 'Panel',
  language: 'Language',
  layers: 'Layers',
  layer_territories: 'Territories',
  layer_services: 'Services',
  layer_settlements: 'Informal settlements',
  layer_worksites: 'Worksites',
  kinds: 'Service kinds',
  kinds_all: 'All',
  kinds_none: 'None',
  search: 'Search a service',
  search_placeholder: 'Service name',
  search_none: 'No service found',
  nearest: 'Nearest services',
  nearest_hint: 'Click the map (or long-press) to find the nearest services.',
  nearest_here: 'Use my position',
  nearest_k: 'How many',
  nearest_open: 'Open now only',
  nearest_language: 'Language spoken',
  nearest_any_language: 'Any',
  nearest_none: 'No service matches the filters.',
  nearest_from: 'From {lat}, {lon}',
  geolocation_failed: 'Position unavailable: {reason}',
  sign_in: 'Sign in',
  sign_out: 'Sign out',
  token: 'Access token',
  signed_in: 'Signed in as an operator: settlements and worksites shown.',
  signed_out: 'Anonymous: territories and services.',
  unauthorized: 'The token is not valid or has expired (401). Not signed in.',
  request_failed: 'Request failed: {reason}',
  kind: 'Kind',
  organization: 'Organisation',
  address: 'Address',
  opening_hours: 'Opening hours',
  open_now: 'open now',
  closed_now: 'closed now',
  languages: 'Languages',
  phone: 'Phone',
  last_verified: 'Last verified',
  unknown: 'not given',
  population: 'Estimated people',
  workers: 'Estimated workers',
  season: 'Season',
  distance: 'distance',
  legend: 'Legend',
  cluster: 'Cluster: the number counts services',
  close: 'Close',
  kind_focal_point: 'Focal point',
  kind_pas: 'PAS',
  kind_shelter: 'Shelter',
  kind_help_desk: 'Help desk',
  kind_outreach_unit: 'Outreach unit',
  kind_job_centre: 'Job centre',
  kind_labour_inspectorate: 'Labour inspectorate',
  kind_prefecture: 'Prefecture',
  kind_reception_centre: 'Reception centre',
  kind_health: 'Health',
  kind_legal_aid: 'Legal aid',
  kind_trade_union: 'Trade union',
  kind_social_services: 'Social services',
  kind_other: 'Other',
};

const ar = {
  title: 'فارو – خريطة الشبكة',
  language: 'اللغة',
  layers: 'الطبقات',
  search: 'ابحث عن خدمة',
  nearest: 'أقرب الخدمات',
  nearest_here: 'استخدم موقعي',
  sign_in: 'تسجيل الدخول',
  sign_out: 'تسجيل الخروج',
  open_now: 'مفتوح الآن',
  closed_now: 'مغلق الآن',
  phone: 'الهاتف',
};

const TABLES = { it, en, ar };
const FALLBACK = { it: null, en: it, ar: en };

/** The language to start with: a stored choice, else the browser's first known one, else it. */
export function initialLanguage(stored, browserLanguages) {
  if (stored && stored in TABLES) return stored;
  for (const tag of browserLanguages ?? []) {
    const code = String(tag).toLowerCase().split('-')[0];
    if (code in TABLES) return code;
  }
  return 'it';
}

/** The string `key` in `lang`, falling back along the chain, with `{name}` placeholders filled. */
export function translate(lang, key, vars = {}) {
  let table = lang;
  let text;
  while (table && text === undefined) {
    text = TABLES[table]?.[key];
    table = Object.keys(TABLES).find((k) => TABLES[k] === FALLBACK[table]);
  }
  if (text === undefined) text = key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ''));
}
