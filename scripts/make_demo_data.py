#!/usr/bin/env python3
"""Generate the faro demo dataset (data/*.geojson).

Usage:
    python3 scripts/make_demo_data.py          # (re)write data/*.geojson
    python3 scripts/make_demo_data.py --check  # verify the files on disk

Python 3.11 standard library only. The output is deterministic: every run
rewrites the three files byte-identically (seeded RNG, fixed key order,
coordinates rounded to 6 decimals, 2-space indented UTF-8 JSON).

What is real and what is not:
  * territories.geojson is NOT written here: it is the real comuni of Treviso
    (ISTAT, CC BY 4.0, via openpolis; simplified) dissolved into the four
    health districts of ULSS 2 by `faro territories define`, made by
    scripts/make_demo_territories.sh (see data/README.md). This script reads
    it: the fictional records are drawn inside that province, and every
    service must lie in the territory of its comune. The grouping of the 94
    comuni (ISTAT codes, situation 2023) is data/treviso_districts.csv.
  * services.geojson: records with "fictional": false are real public
    offices (prefecture, labour inspectorate, job centres, hospitals,
    municipal social services, trade unions, police immigration office,
    INPS). Their positions are approximate (town level, a few hundred metres)
    except the hospitals, whose coordinates come from the Eurostat GISCO
    healthcare-services dataset. Phone numbers, e-mails and street addresses
    of real offices are only given where known and otherwise null; opening
    hours of real offices are null unless the service is a 24/7 emergency
    department. Every record with "fictional": true is invented for the
    demo (focal points, PAS, help desks, legal aid desks, outreach units,
    reception centres, shelters) and uses placeholder contacts.
  * settlements.geojson and worksites.geojson: ENTIRELY FICTIONAL.
    Positions are drawn at random (seeded) inside hand-drawn zones, kept
    inside the real province outline and away from inhabited places.

Town coordinates (PLACES) come from GeoNames (cities500, CC BY 4.0); ISTAT
comune codes from ISTAT; hospital coordinates from Eurostat GISCO.
"""

import csv
import json
import math
import os
import random
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "data")
SEED = 20260115

# ---------------------------------------------------------------------------
# Comuni of the Province of Treviso (ISTAT code, name); the territory of each
# is in data/treviso_districts.csv.
# ---------------------------------------------------------------------------
COMUNI = [
    ("026001", "Altivole"),
    ("026002", "Arcade"),
    ("026003", "Asolo"),
    ("026004", "Borso del Grappa"),
    ("026005", "Breda di Piave"),
    ("026006", "Caerano di San Marco"),
    ("026007", "Cappella Maggiore"),
    ("026008", "Carbonera"),
    ("026009", "Casale sul Sile"),
    ("026010", "Casier"),
    ("026011", "Castelcucco"),
    ("026012", "Castelfranco Veneto"),
    ("026013", "Castello di Godego"),
    ("026014", "Cavaso del Tomba"),
    ("026015", "Cessalto"),
    ("026016", "Chiarano"),
    ("026017", "Cimadolmo"),
    ("026018", "Cison di Valmarino"),
    ("026019", "Codognè"),
    ("026020", "Colle Umberto"),
    ("026021", "Conegliano"),
    ("026022", "Cordignano"),
    ("026023", "Cornuda"),
    ("026025", "Crocetta del Montello"),
    ("026026", "Farra di Soligo"),
    ("026027", "Follina"),
    ("026028", "Fontanelle"),
    ("026029", "Fonte"),
    ("026030", "Fregona"),
    ("026031", "Gaiarine"),
    ("026032", "Giavera del Montello"),
    ("026033", "Godega di Sant'Urbano"),
    ("026034", "Gorgo al Monticano"),
    ("026035", "Istrana"),
    ("026036", "Loria"),
    ("026037", "Mansuè"),
    ("026038", "Mareno di Piave"),
    ("026039", "Maser"),
    ("026040", "Maserada sul Piave"),
    ("026041", "Meduna di Livenza"),
    ("026042", "Miane"),
    ("026043", "Mogliano Veneto"),
    ("026044", "Monastier di Treviso"),
    ("026045", "Monfumo"),
    ("026046", "Montebelluna"),
    ("026047", "Morgano"),
    ("026048", "Moriago della Battaglia"),
    ("026049", "Motta di Livenza"),
    ("026050", "Nervesa della Battaglia"),
    ("026051", "Oderzo"),
    ("026052", "Ormelle"),
    ("026053", "Orsago"),
    ("026055", "Paese"),
    ("026056", "Pederobba"),
    ("026057", "Pieve di Soligo"),
    ("026058", "Ponte di Piave"),
    ("026059", "Ponzano Veneto"),
    ("026060", "Portobuffolè"),
    ("026061", "Possagno"),
    ("026062", "Povegliano"),
    ("026063", "Preganziol"),
    ("026064", "Quinto di Treviso"),
    ("026065", "Refrontolo"),
    ("026066", "Resana"),
    ("026067", "Revine Lago"),
    ("026068", "Riese Pio X"),
    ("026069", "Roncade"),
    ("026070", "Salgareda"),
    ("026071", "San Biagio di Callalta"),
    ("026072", "San Fior"),
    ("026073", "San Pietro di Feletto"),
    ("026074", "San Polo di Piave"),
    ("026075", "Santa Lucia di Piave"),
    ("026076", "San Vendemiano"),
    ("026077", "San Zenone degli Ezzelini"),
    ("026078", "Sarmede"),
    ("026079", "Segusino"),
    ("026080", "Sernaglia della Battaglia"),
    ("026081", "Silea"),
    ("026082", "Spresiano"),
    ("026083", "Susegana"),
    ("026084", "Tarzo"),
    ("026085", "Trevignano"),
    ("026086", "Treviso"),
    ("026087", "Valdobbiadene"),
    ("026088", "Vazzola"),
    ("026089", "Vedelago"),
    ("026090", "Vidor"),
    ("026091", "Villorba"),
    ("026092", "Vittorio Veneto"),
    ("026093", "Volpago del Montello"),
    ("026094", "Zenson di Piave"),
    ("026095", "Zero Branco"),
    ("026096", "Pieve del Grappa"),]

# ---------------------------------------------------------------------------
# Inhabited places in and around the province (GeoNames cities500, name,
# lon, lat). Fictional settlements and worksites are kept away from them.
# ---------------------------------------------------------------------------
PLACES = [
    ('Zelarino', 12.2079, 45.5151), ('Marocco', 12.2305, 45.5354), ('Mogliano Veneto', 12.2429, 45.5559),
    ('Peseggia-Gardigiano', 12.1794, 45.5617), ('Marcon-Gaggio-Colmello', 12.2989, 45.5644), ('Cappella', 12.1404, 45.5691),
    ('Scorzè', 12.1116, 45.5740), ('Zerman', 12.2686, 45.5783), ("Quarto d'Altino", 12.3733, 45.5794),
    ('Bonisiolo', 12.3175, 45.5823), ('Campocroce', 12.2172, 45.5846), ('Musestre', 12.3725, 45.5886),
    ('Rio San Martino', 12.1116, 45.5923), ('Sambughe', 12.2182, 45.5940), ('Casale sul Sile', 12.3265, 45.5964),
    ('Loreggia', 11.9477, 45.5973), ('Zero Branco', 12.1638, 45.5995), ('Borgo Verde', 12.2598, 45.6002),
    ('Preganziol', 12.2372, 45.6014), ("Sant'Ambrogio", 12.0786, 45.6061), ('Loreggiola', 11.9190, 45.6089),
    ('Piombino Dese', 11.9942, 45.6096), ("Sant'Alberto", 12.1347, 45.6131), ('Scandolara', 12.0998, 45.6146),
    ('Conscio', 12.2822, 45.6170), ('Meolo', 12.4524, 45.6197), ('Roncade', 12.3764, 45.6217),
    ('Levada', 12.0569, 45.6245), ('Lughignano', 12.3248, 45.6253), ("Sant'Elena", 12.3351, 45.6256),
    ('Frescada', 12.2367, 45.6288), ('Torreselle', 12.0225, 45.6303), ('Losson della Battaglia', 12.4815, 45.6331),
    ('Badoere', 12.0852, 45.6342), ('Resana', 11.9547, 45.6354), ('Dosson', 12.2541, 45.6360),
    ('Cendon', 12.3250, 45.6380), ('Casier', 12.2933, 45.6423), ('Santa Cristina', 12.1390, 45.6435),
    ('Quinto di Treviso', 12.1651, 45.6435), ('Castelminio', 11.9873, 45.6449), ('Fossalta di Piave', 12.5090, 45.6450),
    ("Sant'Andrea", 11.8964, 45.6466), ('Biancade', 12.3575, 45.6487), ('San Martino di Lupari', 11.8600, 45.6513),
    ('Fornaci', 12.4374, 45.6517), ('Silea', 12.2970, 45.6544), ('Monastier di Treviso', 12.4175, 45.6578),
    ('Casacorba', 12.0389, 45.6594), ('Noventa di Piave', 12.5332, 45.6598), ('Ospedaletto', 12.0788, 45.6619),
    ('Cavasagra', 12.0547, 45.6623), ('Treviso', 12.2416, 45.6667), ('Albaredo', 12.0109, 45.6673),
    ('Galliera Veneta', 11.8222, 45.6675), ('Castelfranco Veneto', 11.9276, 45.6715), ('San Floriano-Olmi', 12.3304, 45.6735),
    ('Paese', 12.1639, 45.6742), ('Salvatronda', 11.9771, 45.6743), ('Carpenedo', 12.0571, 45.6753),
    ('Istrana', 12.1012, 45.6769), ('Rovarè', 12.4041, 45.6787), ('Zenson di Piave', 12.4891, 45.6797),
    ('Villarazzo', 11.9040, 45.6801), ('Padernello', 12.1268, 45.6815), ('San Biagio di Callalta', 12.3772, 45.6836),
    ('Ceggia', 12.6423, 45.6870), ('Vedelago', 12.0185, 45.6872), ('Castagnole', 12.1826, 45.6885),
    ('Mignagola', 12.3215, 45.6887), ('Alberone', 11.8475, 45.6897), ('Campobernardo', 12.5385, 45.6901),
    ('Fossalunga', 12.0532, 45.6916), ('Carbonera', 12.2826, 45.6918), ('Castello di Godego', 11.8800, 45.6927),
    ('Pezzan', 12.0962, 45.6934), ('Pezzan', 12.2918, 45.6977), ('Santa Maria di Campagna', 12.5988, 45.7024),
    ('Rossano Veneto', 11.8037, 45.7031), ('Sala', 12.0950, 45.7033), ('Talponada', 12.4905, 45.7035),
    ('Cavrie', 12.3697, 45.7036), ('Campo di Pietra', 12.5365, 45.7039), ('Bocca Callalta', 12.4427, 45.7049),
    ('Salgareda', 12.4883, 45.7050), ('San Giacomo di Musestrelle', 12.3343, 45.7056), ('Porcellengo', 12.1423, 45.7061),
    ('Pero', 12.3487, 45.7064), ('Fagarè', 12.4277, 45.7069), ('Vallà', 11.9327, 45.7071),
    ('Vacil', 12.3091, 45.7098), ('Ramon-Campagna', 11.8358, 45.7104), ('Fanzolo', 11.9902, 45.7122),
    ('Lancenigo-Villorba', 12.2570, 45.7129), ('Cessalto', 12.6130, 45.7136), ('Ramon', 11.8683, 45.7139),
    ('Ponzano', 12.2044, 45.7154), ('Vigonovo di Sopra', 12.4720, 45.7165), ('Postioma', 12.1522, 45.7175),
    ('Ponte di Piave', 12.4619, 45.7190), ('Poggiana', 11.8818, 45.7191), ('Vascon', 12.2919, 45.7217),
    ('Barcon', 12.0128, 45.7218), ('Breda', 12.3308, 45.7225), ('Saletto-San Bartolomeo', 12.3956, 45.7264),
    ('Musano', 12.1179, 45.7265), ('Riese Pio X', 11.9180, 45.7286), ('Chiarano', 12.5717, 45.7296),
    ('Loria Bessica', 11.8654, 45.7300), ('Negrisia', 12.4359, 45.7335), ('Cassola', 11.7994, 45.7336),
    ('Levada', 12.4713, 45.7344), ('Fossalta Maggiore', 12.5488, 45.7344), ('Candelù', 12.3722, 45.7350),
    ('Trevignano', 12.0672, 45.7367), ('Varago', 12.3108, 45.7373), ('Falze', 12.0926, 45.7438),
    ('Busta', 12.0013, 45.7461), ('Santandrà', 12.2011, 45.7478), ('Corbolone', 12.6697, 45.7496),
    ('Caselle', 11.9800, 45.7497), ('Falzè-Signoressa', 12.1072, 45.7503), ('Spineda', 11.8781, 45.7504),
    ('Maserada sul Piave', 12.3177, 45.7520), ('Camalò', 12.1716, 45.7532), ('Altivole', 11.9562, 45.7537),
    ('San Vito', 11.9155, 45.7551), ("Ca' Rainati", 11.8511, 45.7576), ('Roncadelle', 12.4103, 45.7578),
    ('Visnadello', 12.2466, 45.7587), ('Casoni', 11.8104, 45.7594), ('Povegliano', 12.2094, 45.7595),
    ('Faè', 12.4650, 45.7622), ('Piavon', 12.5267, 45.7643), ('San Rocco', 12.1960, 45.7717),
    ("Villa d'Asolo", 11.8998, 45.7719), ('Montebelluna', 12.0490, 45.7750), ('Motta di Livenza', 12.6041, 45.7755),
    ('Volpago del Montello', 12.1186, 45.7777), ('Ormelle', 12.4243, 45.7778), ("Romano d'Ezzelino", 11.7666, 45.7790),
    ('Spresiano', 12.2563, 45.7791), ('Mussolente', 11.8062, 45.7792), ('Venegazzù', 12.0915, 45.7793),
    ('San Zenone degli Ezzelini', 11.8372, 45.7804), ('Oderzo', 12.4944, 45.7811), ('Caerano di San Marco', 11.9985, 45.7816),
    ('Onè', 11.8740, 45.7837), ('Arcade', 12.2197, 45.7843), ('Cimadolmo', 12.3651, 45.7852),
    ('Gorgo della Chiesa', 12.5627, 45.7875), ('Selva del Montello', 12.1435, 45.7884), ('Asolo', 11.9170, 45.7885),
    ('San Polo di Piave', 12.3929, 45.7897), ('Annone Veneto', 12.6865, 45.7897), ('Gorgo al Monticano', 12.5500, 45.7914),
    ('Liedolo', 11.8203, 45.7923), ('Crespignaga', 11.9428, 45.7937), ('Giavera del Montello', 12.1667, 45.7937),
    ('San Michele di Piave', 12.3463, 45.7967), ('Pove del Grappa', 11.7299, 45.7982), ('Fonte Alto', 11.8622, 45.8021),
    ('Frattina', 12.6778, 45.8069), ('Maser', 11.9750, 45.8074), ('Pagnano', 11.8888, 45.8088),
    ('Borso del Grappa', 11.7737, 45.8103), ('Bidasio', 12.2405, 45.8117), ('Nervesa della Battaglia', 12.1984, 45.8123),
    ('Lutrano', 12.4732, 45.8141), ('Muliparte', 11.9846, 45.8159), ("Sant'Eulalia", 11.8158, 45.8167),
    ('Meduna di Livenza', 12.6283, 45.8172), ('Barco', 12.6717, 45.8189), ('Priula-Colfosco', 12.2585, 45.8200),
    ('Mansuè', 12.5351, 45.8212), ('Ciano', 12.0542, 45.8239), ('Crocetta-Nogarè', 12.0301, 45.8271),
    ('Crespano del Grappa', 11.8336, 45.8279), ('Paderno', 11.8560, 45.8279), ('Paderno del Grappa', 11.8577, 45.8286),
    ('Castelcucco', 11.8830, 45.8302), ('Monfumo', 11.9203, 45.8308), ('Cornuda', 12.0060, 45.8315),
    ('Fontanelle', 12.4663, 45.8334), ('Vazzola', 12.4085, 45.8351), ('Crocetta del Montello', 12.0336, 45.8367),
    ('Ghirano', 12.5648, 45.8449), ('Mareno di Piave', 12.3370, 45.8457), ('Possagno', 11.8847, 45.8479),
    ('Covolo-Levada', 12.0052, 45.8483), ('Pasiano', 12.6272, 45.8497), ('Pozzo', 12.6116, 45.8509),
    ('Caniezza', 11.8990, 45.8527), ('Susegana', 12.2574, 45.8560), ('Portobuffolè', 12.5376, 45.8567),
    ('Onigo', 11.9907, 45.8570), ('Codognè', 12.4128, 45.8605), ('Cavaso del Tomba', 11.8984, 45.8607),
    ('Santa Lucia di Piave', 12.2939, 45.8616), ('Puia-Villanova', 12.5714, 45.8622), ('Mosnigo', 12.0785, 45.8630),
    ('Moriago della Battaglia', 12.1008, 45.8659), ('Vidor', 12.0452, 45.8666), ('Bigolino', 12.0169, 45.8667),
    ('Falzè di Piave', 12.1789, 45.8680), ('Sernaglia della Battaglia', 12.1330, 45.8715), ('Roverbasso', 12.4552, 45.8736),
    ('Saccon', 12.3497, 45.8742), ('Pederobba', 11.9498, 45.8757), ('Gaiarine', 12.4814, 45.8808),
    ('Barbisano', 12.1863, 45.8822), ('Albina', 12.5136, 45.8828), ('San Vendemiano', 12.3516, 45.8873),
    ('Cosniga-Zoppè', 12.3603, 45.8875), ('Conegliano', 12.3020, 45.8880), ('San Vendemiano-Fossamerlo', 12.3299, 45.8918),
    ('Santa Maria', 12.2350, 45.8967), ('Valdobbiadene', 11.9825, 45.8969), ('Pieve di Soligo', 12.1713, 45.8984),
    ('Brugnera', 12.5418, 45.8995), ('Col San Martino', 12.1158, 45.9002), ('San Fior di Sotto', 12.3750, 45.9034),
    ('Farra di Soligo', 12.1244, 45.9053), ('Moro', 12.2826, 45.9061), ('Colmirano', 11.9376, 45.9063),
    ('Alano di Piave', 11.9084, 45.9068), ('Bibano', 12.4327, 45.9075), ('Francenigo', 12.5035, 45.9080),
    ('San Martino', 12.3413, 45.9081), ('Guia', 12.0569, 45.9104), ('Bagnolo', 12.2731, 45.9112),
    ('San Pietro di Feletto', 12.2510, 45.9139), ('Segusino', 11.9556, 45.9170), ('San Giovanni di Livenza', 12.5156, 45.9203),
    ('Quero', 11.9315, 45.9209), ('Setteville', 11.9311, 45.9213), ('San Fior di Sopra', 12.3614, 45.9222),
    ('Refrontolo', 12.2087, 45.9231), ('Godega', 12.3969, 45.9286), ('Orsago', 12.4271, 45.9297),
    ('Cavolano-Schiavoi', 12.5000, 45.9333), ('Vas', 11.9358, 45.9380), ('Colle Umberto', 12.3423, 45.9424),
    ('Scomigo', 12.3201, 45.9425), ('Miane', 12.0925, 45.9434), ('Corbanese', 12.2403, 45.9457),
    ('Cordignano', 12.4157, 45.9494), ('Carpesica', 12.2913, 45.9534), ('Follina', 12.1198, 45.9535),
    ('Mescolino-Minelle', 12.3616, 45.9553), ('San Martino', 12.3381, 45.9574), ('Villa di Villa', 12.4150, 45.9664),
    ('Valmareno', 12.1295, 45.9665), ('Cison di Valmarino', 12.1427, 45.9669), ('Caneva', 12.4526, 45.9708),
    ('Cappella Maggiore', 12.3585, 45.9722), ('Sarmede', 12.3858, 45.9763), ('Tovena', 12.1757, 45.9768),
    ('Tarzo', 12.2292, 45.9771), ('Vittorio Veneto', 12.3006, 45.9803), ('Lago', 12.2148, 45.9861),
    ('Santa Maria', 12.2299, 45.9911), ('Montaner', 12.3787, 45.9982), ('Revine', 12.2556, 45.9993),
    ('Fregona', 12.3386, 46.0080), ('Osigo', 12.3501, 46.0119), ('Nove-San Floriano', 12.3079, 46.0408),]

# ---------------------------------------------------------------------------
# Services
# ---------------------------------------------------------------------------
DEMO_NET = "Rete territoriale contro lo sfruttamento lavorativo (demo)"
DEMO_COOP = "Cooperativa sociale Esempio (demo)"
DEMO_ASSOC = "Associazione Esempio Accoglienza (demo)"
DEMO_PHONE = "+39 000 000 0000"
ULSS = "Azienda ULSS 2 Marca Trevigiana"
ULSS_WEB = "https://www.aulss2.veneto.it"
APPROX = " Position is approximate (town level)."
ALL_WORKERS = "Any worker, regardless of nationality or residence-permit status."


def S(sid, name, kind, org, desc, lon, lat, comune, address=None, phone=None,
      email=None, website=None, languages=("it",), hours=None, referral=False,
      eligibility=None, capacity=None, vacancy=None, confidential=False,
      mobile=False, fictional=False):
    if fictional:
        desc = "Fictional demo record. " + desc
        if phone is None:  # a confidential shelter too: its front door (`/nearest`)
            phone = DEMO_PHONE
    return {
        "id": "svc-" + sid, "lon": lon, "lat": lat,
        "properties": {
            "name": name, "kind": kind, "organization": org, "description": desc,
            "address": address, "comune": comune, "phone": phone, "email": email,
            "website": website, "languages": list(languages), "opening_hours": hours,
            "referral_required": referral, "eligibility": eligibility,
            "capacity": capacity, "vacancy": vacancy, "confidential": confidential,
            "mobile": mobile, "last_verified": None, "fictional": fictional,
        },
    }


SERVICES = [
    # --- Real public offices ------------------------------------------------
    S("prefettura-treviso", "Prefettura – Ufficio Territoriale del Governo di Treviso",
      "prefecture", "Ministero dell'Interno",
      "Territorial Government Office. Hosts the Sportello Unico per l'Immigrazione and "
      "coordinates provincial work against labour exploitation.",
      12.2437, 45.6661, "026086", address="Piazza dei Signori 22, 31100 Treviso",
      website="https://www.prefettura.it/treviso"),
    S("itl-treviso", "Ispettorato Territoriale del Lavoro di Treviso", "labour_inspectorate",
      "Ispettorato Nazionale del Lavoro",
      "Labour inspectorate: inspections, complaints about irregular work, wages and "
      "safety." + APPROX,
      12.2365, 45.6700, "026086", website="https://www.ispettorato.gov.it",
      eligibility=ALL_WORKERS),
    S("questura-treviso-immigrazione", "Questura di Treviso – Ufficio Immigrazione", "other",
      "Polizia di Stato",
      "Residence permits, including permits for victims of exploitation." + APPROX,
      12.2440, 45.6560, "026086"),
    S("inps-treviso", "INPS – Direzione provinciale di Treviso", "other",
      "Istituto Nazionale della Previdenza Sociale",
      "Social security: contributions, agricultural workers' records, unemployment "
      "benefits." + APPROX,
      12.2350, 45.6745, "026086", website="https://www.inps.it"),
]

# Job centres (Veneto Lavoro)
for _sid, _town, _lon, _lat, _code in [
    ("treviso", "Treviso", 12.2330, 45.6615, "026086"),
    ("castelfranco-veneto", "Castelfranco Veneto", 11.9240, 45.6745, "026012"),
    ("montebelluna", "Montebelluna", 12.0440, 45.7730, "026046"),
    ("conegliano", "Conegliano", 12.2980, 45.8850, "026021"),
    ("vittorio-veneto", "Vittorio Veneto", 12.2960, 45.9775, "026092"),
    ("pieve-di-soligo", "Pieve di Soligo", 12.1735, 45.8965, "026057"),
    ("oderzo", "Oderzo", 12.4915, 45.7838, "026051"),
    ("valdobbiadene", "Valdobbiadene", 11.9850, 45.8985, "026087"),
    ("mogliano-veneto", "Mogliano Veneto", 12.2395, 45.5580, "026043"),
]:
    SERVICES.append(S(
        "cpi-" + _sid, "Centro per l'Impiego di " + _town, "job_centre", "Veneto Lavoro",
        "Public job centre: registration as unemployed, job offers, training and "
        "orientation." + APPROX,
        _lon, _lat, _code, website="https://www.venetolavoro.it", eligibility=ALL_WORKERS))

# Hospitals (coordinates: Eurostat GISCO healthcare services)
for _sid, _name, _lon, _lat, _code, _addr, _hours in [
    ("ospedale-ca-foncello", "Ospedale Ca' Foncello – Treviso", 12.260340, 45.659204,
     "026086", "Piazzale dell'Ospedale 1, 31100 Treviso", "24/7"),
    ("ospedale-castelfranco-veneto", "Ospedale di Castelfranco Veneto", 11.931660, 45.679410,
     "026012", None, "24/7"),
    ("ospedale-montebelluna", "Ospedale di Montebelluna", 12.036895, 45.777501,
     "026046", None, "24/7"),
    ("ospedale-conegliano", "Ospedale di Conegliano", 12.289953, 45.881239,
     "026021", None, "24/7"),
    ("ospedale-vittorio-veneto", "Ospedale di Vittorio Veneto", 12.319710, 45.987550,
     "026092", None, "24/7"),
    ("ospedale-oderzo", "Ospedale di Oderzo", 12.487627, 45.781761, "026051", None, None),
]:
    SERVICES.append(S(
        _sid, _name, "health", ULSS,
        "Public hospital." + (" Emergency department open 24/7." if _hours else "")
        + " Urgent care is provided to everyone, including people without a residence "
        "permit (STP code).",
        _lon, _lat, _code, address=_addr, website=ULSS_WEB, hours=_hours,
        eligibility="Everyone; urgent and essential care also without a residence permit."))

# Municipal social services (positions approximate, near the town hall)
for _sid, _town, _lon, _lat, _code, _web, _addr in [
    ("treviso", "Treviso", 12.2448, 45.6652, "026086", "https://www.comune.treviso.it", None),
    ("castelfranco-veneto", "Castelfranco Veneto", 11.9265, 45.6705, "026012", None, None),
    ("montebelluna", "Montebelluna", 12.0505, 45.7760, "026046", None, None),
    ("conegliano", "Conegliano", 12.3035, 45.8870, "026021", None, None),
    ("vittorio-veneto", "Vittorio Veneto", 12.3020, 45.9820, "026092", None, None),
    ("pieve-di-soligo", "Pieve di Soligo", 12.1700, 45.8995, "026057", None, None),
    ("oderzo", "Oderzo", 12.4960, 45.7800, "026051", None, None),
    ("motta-di-livenza", "Motta di Livenza", 12.6060, 45.7770, "026049", None, None),
]:
    SERVICES.append(S(
        "servizi-sociali-" + _sid, "Servizi sociali – Comune di " + _town, "social_services",
        "Comune di " + _town,
        "Municipal social services: social secretariat, support for people in "
        "vulnerable situations, access to local welfare measures." + APPROX,
        _lon, _lat, _code, address=_addr, website=_web,
        eligibility="Mainly residents of the comune; first contact open to everyone."))

# Trade unions (real organisations; office positions approximate)
for _sid, _name, _org, _web, _lon, _lat in [
    ("cgil-treviso", "CGIL – Camera del Lavoro di Treviso", "CGIL", "https://www.cgil.it",
     12.2300, 45.6650),
    ("cisl-treviso", "CISL Belluno Treviso – sede di Treviso", "CISL", "https://www.cisl.it",
     12.2505, 45.6735),
    ("uil-treviso", "UIL – sede di Treviso", "UIL", "https://www.uil.it", 12.2385, 45.6598),
]:
    SERVICES.append(S(
        _sid, _name, "trade_union", _org,
        "Trade union office: contracts, pay slips, disputes, tax and welfare assistance."
        + APPROX, _lon, _lat, "026086", website=_web,
        eligibility="Workers; first consultation open to non-members."))

# --- Fictional records ---------------------------------------------------
_FP_HOURS = {
    "treviso": "Mo-Fr 09:00-13:00,14:00-17:00; Sa 09:00-12:00",
    "castelfranco-veneto": "Mo,We,Fr 09:00-13:00; Tu,Th 14:00-18:00",
    "conegliano": "Mo-Fr 09:00-13:00; Tu,Th 15:00-18:00",
    "oderzo": "Mo-Th 09:00-13:00; Fr 14:00-18:00",
}
for _sid, _town, _lon, _lat, _code, _langs in [
    ("treviso", "Treviso", 12.2480, 45.6695, "026086", ("it", "en", "fr", "ar", "ur", "bn")),
    ("castelfranco-veneto", "Castelfranco Veneto", 11.9300, 45.6690, "026012",
     ("it", "en", "ro", "sq", "ar")),
    ("conegliano", "Conegliano", 12.3060, 45.8905, "026021", ("it", "en", "ro", "uk", "pa")),
    ("oderzo", "Oderzo", 12.4975, 45.7825, "026051", ("it", "en", "fr", "wo", "ar", "pa")),
]:
    SERVICES.append(S(
        "punto-focale-" + _sid, "Punto focale per il lavoro dignitoso – " + _town,
        "focal_point", DEMO_NET,
        "Stable focal point of the territorial network: first contact, orientation and "
        "accompaniment to services for workers at risk of exploitation.",
        _lon, _lat, _code, email="punto-focale." + _sid + "@example.org",
        languages=_langs, hours=_FP_HOURS[_sid], eligibility=ALL_WORKERS, fictional=True))

for _sid, _town, _lon, _lat, _code, _hours in [
    ("valdobbiadene", "Valdobbiadene", 11.9810, 45.8955, "026087", "Mo 09:00-12:00"),
    ("farra-di-soligo", "Farra di Soligo", 12.1255, 45.9040, "026026", "Tu 09:00-12:00"),
    ("susegana", "Susegana", 12.2590, 45.8550, "026083", "We 15:00-18:00"),
    ("ponte-di-piave", "Ponte di Piave", 12.4635, 45.7180, "026058", "Th 09:00-12:00"),
    ("motta-di-livenza", "Motta di Livenza", 12.6075, 45.7760, "026049", "Fr 15:00-18:00"),
]:
    SERVICES.append(S(
        "punto-focale-itinerante-" + _sid, "Punto focale itinerante – tappa di " + _town,
        "focal_point", DEMO_NET,
        "Weekly stop of the itinerant focal point (camper van) serving rural areas and "
        "seasonal workers.",
        _lon, _lat, _code, email="punto-focale.itinerante@example.org",
        languages=("it", "en", "fr", "ar", "pa", "wo"), hours=_hours,
        eligibility=ALL_WORKERS, mobile=True, fictional=True))

for _sid, _town, _lon, _lat, _code, _hours, _langs in [
    ("villorba", "Villorba", 12.2555, 45.7140, "026091", "Mo,We 09:00-12:30", ("it", "en", "sq")),
    ("roncade", "Roncade", 12.3780, 45.6230, "026069", "Tu 14:30-17:30", ("it", "en")),
    ("montebelluna", "Montebelluna", 12.0530, 45.7715, "026046", "Mo-Fr 09:00-12:00",
     ("it", "en", "ro", "zh")),
    ("vittorio-veneto", "Vittorio Veneto", 12.2990, 45.9840, "026092", "Tu,Th 09:00-12:00",
     ("it", "en", "uk")),
    ("mareno-di-piave", "Mareno di Piave", 12.3385, 45.8445, "026038", "We 15:00-18:00",
     ("it", "ro", "pa")),
    ("motta-di-livenza", "Motta di Livenza", 12.6020, 45.7740, "026049", "Mo,Th 09:00-12:00",
     ("it", "fr", "wo", "bn")),
]:
    SERVICES.append(S(
        "pas-" + _sid, "PAS – Punto di Accesso ai Servizi di " + _town, "pas", DEMO_NET,
        "Access point to local services: information, appointment booking and referral to "
        "social, health and labour services.",
        _lon, _lat, _code, languages=_langs, hours=_hours, eligibility=ALL_WORKERS,
        fictional=True))

for _sid, _town, _lon, _lat, _code, _hours, _langs in [
    ("treviso", "Treviso", 12.2280, 45.6690, "026086", "Mo,We 15:00-18:00", ("it", "en", "ar", "ur")),
    ("montebelluna", "Montebelluna", 12.0470, 45.7785, "026046", "Tu 15:00-18:00", ("it", "ro", "sq")),
    ("conegliano", "Conegliano", 12.2995, 45.8915, "026021", "Th 15:00-18:00", ("it", "en", "pa")),
    ("oderzo", "Oderzo", 12.4930, 45.7790, "026051", "Fr 09:00-12:00", ("it", "fr", "wo")),
]:
    SERVICES.append(S(
        "sportello-caporalato-" + _sid, "Sportello contro il caporalato – " + _town,
        "help_desk", DEMO_NET,
        "Help desk against gangmastering, hosted at a trade-union office: anonymous "
        "first interview, checks on pay and hours, support to report.",
        _lon, _lat, _code, email="sportello." + _sid + "@example.org", languages=_langs,
        hours=_hours, eligibility=ALL_WORKERS, fictional=True))

SERVICES += [
    S("sportello-legale-treviso", "Sportello legale gratuito (demo) – Treviso", "legal_aid",
      DEMO_ASSOC,
      "Free legal advice on labour and immigration law, with volunteer lawyers.",
      12.2395, 45.6730, "026086", email="legale.treviso@example.org",
      languages=("it", "en", "fr"), hours="Tu,Th 15:00-18:00", eligibility=ALL_WORKERS,
      fictional=True),
    S("sportello-legale-conegliano", "Sportello legale gratuito (demo) – Conegliano",
      "legal_aid", DEMO_ASSOC,
      "Free legal advice on labour and immigration law; by appointment.",
      12.3075, 45.8860, "026021", email="legale.conegliano@example.org",
      languages=("it", "en", "ro"), hours="We 14:00-17:00", referral=True,
      eligibility=ALL_WORKERS, fictional=True),
    S("unita-di-strada-marca-sud", "Unità di strada (demo) – Marca sud e Piave",
      "outreach_unit", DEMO_COOP,
      "Street outreach unit visiting farmland, roadside pick-up points and informal "
      "settlements; the point marks its base.",
      12.2520, 45.6620, "026086", languages=("it", "en", "fr", "ar", "wo", "pa"),
      hours="Tu,Th 18:00-23:00; Sa 06:00-10:00", eligibility=ALL_WORKERS, mobile=True,
      fictional=True),
    S("unita-di-strada-colline", "Unità di strada (demo) – Colline del Prosecco",
      "outreach_unit", DEMO_COOP,
      "Street outreach unit for the vineyard hills, especially during pruning and "
      "harvest; the point marks its base.",
      12.1750, 45.9005, "026057", languages=("it", "en", "ro", "ur", "bn"),
      hours="Mo,We 17:00-22:00; Sa 06:00-10:00", eligibility=ALL_WORKERS, mobile=True,
      fictional=True),
    S("centro-accoglienza-casier", "Centro di accoglienza (demo) – Casier",
      "reception_centre", DEMO_ASSOC,
      "Reception centre for asylum seekers and people leaving exploitation; places are "
      "assigned through the Prefecture.",
      12.2960, 45.6400, "026010", languages=("it", "en", "fr", "ar"), hours="24/7",
      referral=True, eligibility="Adults referred by the Prefecture or by the anti-trafficking "
      "network.", capacity=40, vacancy=6, fictional=True),
    S("centro-accoglienza-vittorio-veneto", "Centro di accoglienza (demo) – Vittorio Veneto",
      "reception_centre", DEMO_ASSOC,
      "Small reception centre with language courses and job orientation.",
      12.3050, 45.9700, "026092", languages=("it", "en", "ur", "bn"), hours="24/7",
      referral=True, eligibility="Adults referred by the Prefecture.", capacity=24,
      vacancy=0, fictional=True),
    S("casa-rifugio-a", "Casa rifugio A (demo)", "shelter", DEMO_COOP,
      "This is a fictional demo shelter. Confidential address: the point is placed at "
      "town level only. Access only through the focal points or the anti-trafficking "
      "helpline.",
      12.0490, 45.7750, "026046", languages=("it", "en", "ro"), hours=None, referral=True,
      eligibility="Victims of serious exploitation or trafficking, after assessment.",
      capacity=8, vacancy=2, confidential=True, fictional=True),
    S("casa-rifugio-b", "Casa rifugio B (demo)", "shelter", DEMO_COOP,
      "This is a fictional demo shelter. Confidential address: the point is placed at "
      "town level only. Access only through the focal points or the anti-trafficking "
      "helpline.",
      12.3020, 45.8881, "026021", languages=("it", "en", "fr", "ar"), hours=None,
      referral=True,
      eligibility="Women and children leaving exploitation or violence, after assessment.",
      capacity=6, vacancy=1, confidential=True, fictional=True),
    S("dormitorio-treviso", "Accoglienza notturna a bassa soglia (demo) – Treviso", "shelter",
      DEMO_ASSOC,
      "This is a fictional demo shelter: low-threshold shelter open day and night, no referral needed.",
      12.2250, 45.6605, "026086", email="notte.treviso@example.org",
      languages=("it", "en", "fr", "ar", "uk"), hours="24/7",
      eligibility="Adults without accommodation.", capacity=30, vacancy=4, fictional=True),
]

# ---------------------------------------------------------------------------
# Zones for the fictional records (hand-drawn, lon/lat, counter-clockwise)
# ---------------------------------------------------------------------------
ZONES = {
    # Conegliano-Valdobbiadene Prosecco hills
    "prosecco_hills": [(11.975, 45.885), (12.060, 45.872), (12.160, 45.878), (12.240, 45.880),
                       (12.300, 45.895), (12.335, 45.935), (12.300, 45.965), (12.240, 45.960),
                       (12.160, 45.948), (12.080, 45.935), (12.000, 45.918)],
    # Montello ridge and Asolo hills
    "montello_asolo": [(11.880, 45.795), (11.990, 45.800), (12.050, 45.805), (12.120, 45.800),
                       (12.200, 45.810), (12.200, 45.825), (12.120, 45.835), (12.040, 45.830),
                       (11.990, 45.825), (11.880, 45.820)],
    # Piave DOC plain (Ormelle, San Polo, Cimadolmo, Ponte di Piave)
    "piave_plain": [(12.350, 45.760), (12.450, 45.750), (12.500, 45.760), (12.500, 45.810),
                    (12.400, 45.820), (12.340, 45.800)],
    # Left bank of the Piave between Susegana and Mareno
    "piave_left_bank": [(12.260, 45.830), (12.360, 45.815), (12.400, 45.835), (12.350, 45.860),
                        (12.270, 45.850)],
    # Upper plain between Castelfranco, Riese and Montebelluna
    "castellana_plain": [(11.840, 45.690), (11.950, 45.700), (12.060, 45.700), (12.060, 45.745),
                         (11.950, 45.755), (11.860, 45.760)],
    # Lower plain between Resana, Vedelago and Morgano
    "resana_vedelago": [(11.930, 45.630), (12.060, 45.645), (12.060, 45.670), (11.950, 45.665)],
    # Zero Branco, Preganziol and Mogliano countryside
    "zero_branco": [(12.120, 45.585), (12.250, 45.570), (12.260, 45.600), (12.130, 45.610)],
    # Southern plain from Roncade to Cessalto
    "southern_plain": [(12.300, 45.585), (12.420, 45.620), (12.550, 45.690), (12.620, 45.700),
                       (12.640, 45.740), (12.560, 45.740), (12.450, 45.700), (12.330, 45.640)],
    # Oderzo and Motta di Livenza farmland
    "oderzo_motta": [(12.450, 45.720), (12.600, 45.700), (12.650, 45.740), (12.640, 45.800),
                     (12.550, 45.810), (12.470, 45.785)],
}
# Clusters around industrial areas and towns: (name, lon, lat, radius km)
CLUSTERS = {
    "logistics": [("villorba", 12.270, 45.720, 2.5), ("silea", 12.320, 45.645, 2.0),
                  ("castelfranco", 11.950, 45.665, 2.5), ("oderzo", 12.520, 45.785, 2.5),
                  ("montebelluna", 12.070, 45.765, 2.0), ("conegliano", 12.330, 45.870, 2.0),
                  ("mogliano", 12.260, 45.570, 1.5)],
    "construction": [("treviso", 12.2416, 45.6667, 3.0), ("conegliano", 12.3020, 45.8881, 2.5),
                     ("montebelluna", 12.0490, 45.7750, 2.5), ("castelfranco", 11.9276, 45.6715, 2.5),
                     ("vittorio", 12.3007, 45.9803, 2.0)],
    "textile": [("montebelluna", 12.0490, 45.7750, 3.0), ("vittorio", 12.3007, 45.9803, 2.5),
                ("oderzo", 12.4944, 45.7811, 2.5)],
}
# Approximate course of the Piave through the province (for riverside settlements)
PIAVE = [(11.935, 45.905), (11.955, 45.885), (11.990, 45.862), (12.030, 45.853),
         (12.080, 45.846), (12.130, 45.843), (12.180, 45.838), (12.215, 45.830),
         (12.250, 45.822), (12.275, 45.806), (12.305, 45.787), (12.345, 45.765),
         (12.380, 45.745), (12.420, 45.726), (12.450, 45.712), (12.475, 45.700),
         (12.495, 45.680), (12.505, 45.662)]

# Worksite plan: (kind, count, zone or cluster, min km from inhabited places)
WORKSITE_PLAN = [
    ("vineyard", 48, "zone:prosecco_hills", 0.4),
    ("vineyard", 14, "zone:montello_asolo", 0.4),
    ("vineyard", 10, "zone:piave_plain", 0.4),
    ("orchard", 11, "zone:piave_left_bank", 0.4),
    ("orchard", 9, "zone:castellana_plain", 0.4),
    ("greenhouse", 9, "zone:resana_vedelago", 0.4),
    ("greenhouse", 6, "zone:zero_branco", 0.4),
    ("logistics", 20, "cluster:logistics", 0.3),
    ("farm", 8, "zone:southern_plain", 0.4),
    ("farm", 7, "zone:oderzo_motta", 0.4),
    ("livestock", 5, "zone:castellana_plain", 0.5),
    ("livestock", 3, "zone:oderzo_motta", 0.5),
    ("construction", 7, "cluster:construction", 0.2),
    ("textile", 4, "cluster:textile", 0.3),
    ("other", 3, "province", 0.4),
]
WORKSITE_KINDS = ["farm", "vineyard", "orchard", "greenhouse", "livestock", "textile",
                  "logistics", "construction", "other"]
WORKSITE_LABEL = {
    "vineyard": "Vigneto", "orchard": "Frutteto", "greenhouse": "Serra",
    "logistics": "Magazzino logistico", "farm": "Azienda agricola", "livestock": "Allevamento",
    "construction": "Cantiere", "textile": "Laboratorio tessile", "other": "Sito produttivo",
}
WORKSITE_WORKERS = {
    "vineyard": (3, 60), "orchard": (4, 80), "greenhouse": (4, 60), "logistics": (25, 300),
    "farm": (2, 40), "livestock": (2, 25), "construction": (5, 80), "textile": (8, 120),
    "other": (2, 50),
}
# Share of each plan entry drawn as a small polygon instead of a point.
WORKSITE_POLYGON_SHARE = {
    "vineyard": 0.4, "orchard": 0.35, "greenhouse": 0.4, "logistics": 0.3, "farm": 0.3,
    "livestock": 0.15, "construction": 0.15, "textile": 0.0, "other": 0.0,
}
WORKSITE_NOTES = {
    "vineyard": "Hand labour for pruning and harvest.",
    "orchard": "Seasonal picking.",
    "greenhouse": "Vegetables and nursery plants under cover.",
    "logistics": "Warehouse with seasonal peaks, staffing through contractors.",
    "farm": "Arable farm with seasonal field work.",
    "livestock": "Animal husbandry, year-round work.",
    "construction": "Building site with subcontracted crews.",
    "textile": "Subcontracting workshop.",
    "other": "Mixed activity.",
}

# Settlement plan: (count, where, sector choices, min km from places)
SETTLEMENT_PLAN = [
    (7, "zone:prosecco_hills", ["viticulture"], 1.2),
    (2, "zone:montello_asolo", ["viticulture", "agriculture"], 1.2),
    (5, "piave", ["agriculture", "viticulture"], 1.2),
    (5, "zone:oderzo_motta", ["agriculture"], 1.2),
    (1, "zone:southern_plain", ["agriculture"], 1.2),
    (1, "cluster:logistics", ["logistics"], 1.0),
    (1, "zone:castellana_plain", ["construction"], 1.2),
]
SETTLEMENT_POLYGONS = 5
SETTLEMENT_SEASONS = {
    "viticulture": [[8, 9, 10], [8, 9, 10, 11], [1, 2, 3, 8, 9, 10], [9, 10]],
    "agriculture": [[5, 6, 7, 8, 9], [6, 7, 8], [4, 5, 6, 7, 8, 9, 10], list(range(1, 13))],
    "logistics": [list(range(1, 13))],
    "construction": [[3, 4, 5, 6, 7, 8, 9, 10, 11], list(range(1, 13))],
}
SETTLEMENT_NOTES = {
    "viticulture": "Makeshift shelters used by vineyard crews during pruning and harvest.",
    "agriculture": "Seasonal camp of farm workers in abandoned rural buildings.",
    "logistics": "Overcrowded shared housing near warehouses, workers move by night shifts.",
    "construction": "Workers housed by a subcontractor in a disused farmhouse.",
}

# ---------------------------------------------------------------------------
# Geometry helpers (planar lon/lat; distances in km with a local projection)
# ---------------------------------------------------------------------------
KM_LAT = 111.2
KM_LON = 111.32 * math.cos(math.radians(45.8))


def r6(x):
    return round(x, 6)


def ring_area(ring):
    """Signed shoelace area of a closed or open ring (deg^2, > 0 if ccw)."""
    a = 0.0
    n = len(ring)
    for i in range(n):
        x1, y1 = ring[i]
        x2, y2 = ring[(i + 1) % n]
        a += x1 * y2 - x2 * y1
    return a / 2.0


def point_in_ring(x, y, ring):
    inside = False
    n = len(ring)
    j = n - 1
    for i in range(n):
        xi, yi = ring[i]
        xj, yj = ring[j]
        if (yi > y) != (yj > y):
            xc = xi + (y - yi) * (xj - xi) / (yj - yi)
            if x < xc:
                inside = not inside
        j = i
    return inside


def km_point_segment(px, py, a, b):
    ax, ay = (a[0] - px) * KM_LON, (a[1] - py) * KM_LAT
    bx, by = (b[0] - px) * KM_LON, (b[1] - py) * KM_LAT
    dx, dy = bx - ax, by - ay
    L = dx * dx + dy * dy
    t = 0.0 if L == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / L))
    cx, cy = ax + t * dx, ay + t * dy
    return math.hypot(cx, cy)


def km_to_ring(px, py, ring):
    n = len(ring)
    return min(km_point_segment(px, py, ring[i], ring[(i + 1) % n]) for i in range(n))


def km_between(a, b):
    return math.hypot((a[0] - b[0]) * KM_LON, (a[1] - b[1]) * KM_LAT)


def _orient(a, b, c):
    v = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    return (v > 0) - (v < 0)


def _on_seg(a, b, c):
    return (min(a[0], b[0]) <= c[0] <= max(a[0], b[0])
            and min(a[1], b[1]) <= c[1] <= max(a[1], b[1]))


def segments_intersect(p1, p2, q1, q2):
    o1, o2 = _orient(p1, p2, q1), _orient(p1, p2, q2)
    o3, o4 = _orient(q1, q2, p1), _orient(q1, q2, p2)
    if o1 != o2 and o3 != o4:
        return True
    if o1 == 0 and _on_seg(p1, p2, q1):
        return True
    if o2 == 0 and _on_seg(p1, p2, q2):
        return True
    if o3 == 0 and _on_seg(q1, q2, p1):
        return True
    if o4 == 0 and _on_seg(q1, q2, p2):
        return True
    return False


def ring_is_simple(ring):
    """ring is closed (first == last). True if no two non-adjacent edges touch."""
    pts = ring[:-1]
    n = len(pts)
    if len(set(pts)) != n:
        return False
    edges = [(pts[i], pts[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue
            if segments_intersect(edges[i][0], edges[i][1], edges[j][0], edges[j][1]):
                return False
    return True


def rings_cross(r1, r2):
    """True if any edge of closed ring r1 touches any edge of closed ring r2."""
    for i in range(len(r1) - 1):
        for j in range(len(r2) - 1):
            if segments_intersect(r1[i], r1[i + 1], r2[j], r2[j + 1]):
                return True
    return False


def offset_m(lon, lat, dx_m, dy_m):
    return (lon + dx_m / (1000.0 * 111.32 * math.cos(math.radians(lat))),
            lat + dy_m / (1000.0 * KM_LAT))


# ---------------------------------------------------------------------------
# Territories
# ---------------------------------------------------------------------------
def load_territories():
    """The province's ring and each territory's ring (lon, lat, closed) from
    data/territories.geojson, written by scripts/make_demo_territories.sh. Each
    is one polygon without holes; the script stops if that ever changes."""
    with open(os.path.join(DATA, "territories.geojson"), encoding="utf-8") as fh:
        feats = json.load(fh)["features"]
    rings = {}
    for f in feats:
        g = f["geometry"]
        polys = [g["coordinates"]] if g["type"] == "Polygon" else g["coordinates"]
        if len(polys) != 1 or len(polys[0]) != 1:
            raise SystemExit("%s: expected one polygon without holes" % f["id"])
        rings[f["id"]] = [tuple(p) for p in polys[0][0]]
    province = rings.pop("prov-treviso")
    return province, rings


def read_districts():
    """ISTAT comune code -> territory id, from data/treviso_districts.csv."""
    with open(os.path.join(DATA, "treviso_districts.csv"), encoding="utf-8", newline="") as fh:
        return {row["code"]: row["id"] for row in csv.DictReader(fh)}


PROVINCE, TERRITORY_RINGS = load_territories()
DISTRICTS = read_districts()


def inside_province(x, y, margin_km=0.0):
    return point_in_ring(x, y, PROVINCE) and km_to_ring(x, y, PROVINCE) >= margin_km


def territory_of(x, y):
    hits = [t for t, r in TERRITORY_RINGS.items() if point_in_ring(x, y, r)]
    return hits[0] if len(hits) == 1 else None


def geom_point(x, y):
    return {"type": "Point", "coordinates": [r6(x), r6(y)]}


def geom_polygon(ring):
    pts = [[r6(x), r6(y)] for x, y in ring]
    if pts[0] != pts[-1]:
        pts.append(pts[0])
    return {"type": "Polygon", "coordinates": [pts]}


def feature(fid, props, geometry):
    return {"type": "Feature", "id": fid, "properties": props, "geometry": geometry}


# ---------------------------------------------------------------------------
# Random helpers
# ---------------------------------------------------------------------------
def date_2026(rng, first_month=1, last_month=11):
    m = rng.randint(first_month, last_month)
    d = rng.randint(1, 28)
    return "2026-%02d-%02d" % (m, d)


def ring_bbox(ring):
    xs = [p[0] for p in ring]
    ys = [p[1] for p in ring]
    return min(xs), min(ys), max(xs), max(ys)


def sample_in_zone(rng, where):
    """One candidate point (lon, lat) for a zone/cluster/piave/province spec."""
    if where == "province":
        ring = PROVINCE
    elif where.startswith("zone:"):
        ring = ZONES[where[5:]]
    elif where.startswith("cluster:"):
        _, cx, cy, rad = rng.choice(CLUSTERS[where[8:]])
        ang = rng.uniform(0, 2 * math.pi)
        dist = rad * math.sqrt(rng.random()) * 1000.0
        return offset_m(cx, cy, dist * math.cos(ang), dist * math.sin(ang))
    elif where == "piave":
        i = rng.randrange(len(PIAVE) - 1)
        (x1, y1), (x2, y2) = PIAVE[i], PIAVE[i + 1]
        t = rng.random()
        x, y = x1 + t * (x2 - x1), y1 + t * (y2 - y1)
        dx, dy = (x2 - x1) * KM_LON, (y2 - y1) * KM_LAT
        L = math.hypot(dx, dy)
        side = rng.choice((-1, 1)) * rng.uniform(250, 800)
        return offset_m(x, y, -dy / L * side, dx / L * side)
    else:
        raise ValueError(where)
    x0, y0, x1, y1 = ring_bbox(ring)
    while True:
        x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
        if point_in_ring(x, y, ring):
            return x, y


def place_point(rng, where, min_place_km, taken, min_sep_km, margin_km):
    for _ in range(20000):
        x, y = sample_in_zone(rng, where)
        if not inside_province(x, y, margin_km):
            continue
        if any(km_between((x, y), (px, py)) < min_place_km for _, px, py in PLACES):
            continue
        if any(km_between((x, y), t) < min_sep_km for t in taken):
            continue
        taken.append((x, y))
        return x, y
    raise RuntimeError("could not place a point in " + where)


def rect_polygon(rng, x, y, w_m, h_m):
    ang = rng.uniform(0, math.pi)
    c, s = math.cos(ang), math.sin(ang)
    ring = []
    for ux, uy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):  # ccw
        dx, dy = ux * w_m / 2.0, uy * h_m / 2.0
        ring.append(offset_m(x, y, dx * c - dy * s, dx * s + dy * c))
    ring.append(ring[0])
    return ring


def blob_polygon(rng, x, y, r_min_m, r_max_m, n):
    step = 2 * math.pi / n
    start = rng.uniform(0, step)
    ring = []
    for i in range(n):  # increasing angles: star-shaped, ccw
        ang = start + i * step + rng.uniform(-0.25, 0.25) * step
        r = rng.uniform(r_min_m, r_max_m)
        ring.append(offset_m(x, y, r * math.cos(ang), r * math.sin(ang)))
    ring.append(ring[0])
    return ring


# ---------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------
def make_services(rng):
    feats = []
    for s in SERVICES:
        props = dict(s["properties"])
        props["last_verified"] = date_2026(rng)
        feats.append(feature(s["id"], props, geom_point(s["lon"], s["lat"])))
    return feats


def make_settlements(rng):
    specs = []
    for count, where, sectors, min_km in SETTLEMENT_PLAN:
        specs += [(where, sectors, min_km)] * count
    poly_idx = set(rng.sample(range(len(specs)), SETTLEMENT_POLYGONS))
    taken, feats = [], []
    for i, (where, sectors, min_km) in enumerate(specs):
        x, y = place_point(rng, where, min_km, taken, 2.0, 0.8)
        sector = rng.choice(sectors)
        props = {
            "name": "Insediamento demo %02d (fictional)" % (i + 1),
            "population_estimate": rng.randint(5, 250 if sector != "construction" else 40),
            "season": list(rng.choice(SETTLEMENT_SEASONS[sector])),
            "sector": sector,
            "last_surveyed": date_2026(rng),
            "notes": "Fictional demo record: not a real place. " + SETTLEMENT_NOTES[sector],
            "fictional": True,
        }
        if i in poly_idx:
            geom = geom_polygon(blob_polygon(rng, x, y, 90, 220, rng.randint(6, 9)))
        else:
            geom = geom_point(x, y)
        feats.append(feature("set-%02d" % (i + 1), props, geom))
    return feats


def peak_months(rng, kind):
    if kind == "vineyard":
        return rng.choice([[8, 9, 10], [9, 10], [1, 2, 9, 10], [1, 2, 3, 8, 9, 10]])
    if kind == "orchard":
        return rng.choice([[6, 7, 8], [7, 8, 9], [6, 7, 8, 9, 10]])
    if kind == "greenhouse":
        return rng.choice([[3, 4, 5, 6], [9, 10, 11], [3, 4, 5, 9, 10]])
    if kind == "logistics":
        return rng.choice([[10, 11, 12], [11, 12], [6, 7, 11, 12]])
    if kind == "farm":
        return rng.choice([[5, 6, 7, 8, 9], [6, 7, 8], [4, 5, 9, 10]])
    if kind == "livestock":
        return list(range(1, 13))
    if kind == "construction":
        return rng.choice([[4, 5, 6, 7, 8, 9, 10], [3, 4, 5, 6, 7]])
    if kind == "textile":
        return rng.choice([[2, 3, 9, 10], [1, 2, 3, 8, 9]])
    return sorted(rng.sample(range(1, 13), 3))


def make_worksites(rng):
    taken, feats, n = [], [], 0
    for kind, count, where, min_km in WORKSITE_PLAN:
        polys = set(rng.sample(range(count), round(count * WORKSITE_POLYGON_SHARE[kind])))
        for j in range(count):
            n += 1
            x, y = place_point(rng, where, min_km, taken, 0.35, 0.6)
            lo, hi = WORKSITE_WORKERS[kind]
            props = {
                "name": "%s demo %03d (fictional)" % (WORKSITE_LABEL[kind], n),
                "kind": kind,
                "workers_estimate": rng.randint(lo, hi),
                "peak_months": peak_months(rng, kind),
                "notes": "Fictional demo record: not a real worksite. " + WORKSITE_NOTES[kind],
                "fictional": True,
            }
            if j in polys:
                w = rng.uniform(60, 320)  # metres; diagonal stays below 400 m
                h = rng.uniform(50, min(w, 240))
                geom = geom_polygon(rect_polygon(rng, x, y, w, h))
            else:
                geom = geom_point(x, y)
            feats.append(feature("ws-%03d" % n, props, geom))
    return feats


def collection(feats):
    return {"type": "FeatureCollection", "features": feats}


def dumps(obj):
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def build_all():
    return {
        "services.geojson": collection(make_services(random.Random(SEED + 1))),
        "settlements.geojson": collection(make_settlements(random.Random(SEED + 2))),
        "worksites.geojson": collection(make_worksites(random.Random(SEED + 3))),
    }


# ---------------------------------------------------------------------------
# Verification (--check)
# ---------------------------------------------------------------------------
SERVICE_KINDS = {"focal_point", "pas", "shelter", "help_desk", "outreach_unit", "job_centre",
                 "labour_inspectorate", "prefecture", "reception_centre", "health",
                 "legal_aid", "trade_union", "social_services", "other"}
FICTIONAL_KINDS = {"shelter", "pas", "focal_point", "help_desk", "outreach_unit",
                   "reception_centre", "legal_aid"}
SERVICE_PROPS = ["name", "kind", "organization", "description", "address", "comune", "phone",
                 "email", "website", "languages", "opening_hours", "referral_required",
                 "eligibility", "capacity", "vacancy", "confidential", "mobile",
                 "last_verified", "fictional"]
LANGS = {"it", "en", "fr", "ar", "ro", "ur", "pa", "bn", "wo", "sq", "uk", "zh", "es", "ru",
         "hi", "tl", "ti", "so"}
_DAY = r"(?:Mo|Tu|We|Th|Fr|Sa|Su)"
_DAYS = _DAY + r"(?:-" + _DAY + r")?(?:," + _DAY + r"(?:-" + _DAY + r")?)*"
_TIME = r"(?:[01]\d|2[0-4]):[0-5]\d-(?:[01]\d|2[0-4]):[0-5]\d"
_RULE = _DAYS + " " + _TIME + "(?:," + _TIME + ")*"
OPENING_RE = re.compile(r"^(?:24/7|" + _RULE + "(?:; " + _RULE + ")*)$")
ID_RE = re.compile(r"^(prov|terr|svc|set|ws)-[a-z0-9]+(?:-[a-z0-9]+)*$")
DATE_RE = re.compile(r"^2026-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")
PHONE_RE = re.compile(r"^\+39 \d{3,4} \d{3} ?\d{0,4}$")


class Checker:
    def __init__(self):
        self.errors = []

    def req(self, cond, msg):
        if not cond:
            self.errors.append(msg)
        return cond


def _positions(geom):
    if geom["type"] == "Point":
        return [geom["coordinates"]]
    if geom["type"] == "Polygon":
        return [p for r in geom["coordinates"] for p in r]
    if geom["type"] == "MultiPolygon":
        return [p for poly in geom["coordinates"] for r in poly for p in r]
    return []


def _polygons(geom):
    if geom["type"] == "Polygon":
        return [geom["coordinates"]]
    if geom["type"] == "MultiPolygon":
        return geom["coordinates"]
    return []


def check_geometry(c, fid, geom):
    c.req(geom["type"] in ("Point", "Polygon", "MultiPolygon"), fid + ": geometry type")
    for p in _positions(geom):
        ok = (len(p) == 2 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in p))
        if not c.req(ok, fid + ": bad position %r" % (p,)):
            continue
        c.req(-180 <= p[0] <= 180 and -90 <= p[1] <= 90, fid + ": out of range %r" % (p,))
        c.req(all(round(v, 6) == v for v in p), fid + ": more than 6 decimals %r" % (p,))
    for poly in _polygons(geom):
        for k, ring in enumerate(poly):
            pts = [tuple(p) for p in ring]
            c.req(len(pts) >= 4, fid + ": ring with < 4 positions")
            c.req(pts[0] == pts[-1], fid + ": ring not closed")
            a = ring_area(pts[:-1])
            c.req(a > 0 if k == 0 else a < 0, fid + ": wrong ring orientation")
            c.req(ring_is_simple(pts), fid + ": self-intersecting ring")


def within_province(geom):
    """Every position strictly inside the province and no edge crossing."""
    for p in _positions(geom):
        if not point_in_ring(p[0], p[1], PROVINCE_ON_DISK):
            return False
    for poly in _polygons(geom):
        if rings_cross([tuple(p) for p in poly[0]], PROVINCE_ON_DISK):
            return False
    return True


PROVINCE_ON_DISK = None


def run_check():
    global PROVINCE_ON_DISK
    c = Checker()
    files, parsed = ["territories.geojson", "services.geojson", "settlements.geojson",
                     "worksites.geojson"], {}
    for name in files:
        path = os.path.join(DATA, name)
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
            parsed[name] = json.loads(raw.decode("utf-8"))
        except (OSError, ValueError) as exc:
            c.req(False, "%s: cannot read/parse: %s" % (name, exc))
    if c.errors:
        return c.errors
    # Determinism: the files on disk equal a fresh build.
    for name, obj in build_all().items():
        with open(os.path.join(DATA, name), "rb") as fh:
            c.req(fh.read() == dumps(obj).encode("utf-8"),
                  name + ": differs from a fresh build (run the generator)")

    ids = set()
    for name in files:
        fc = parsed[name]
        c.req(fc.get("type") == "FeatureCollection", name + ": not a FeatureCollection")
        for f in fc["features"]:
            fid = f.get("id")
            c.req(isinstance(fid, str) and ID_RE.match(fid or ""), name + ": bad id %r" % fid)
            c.req(fid not in ids, "duplicate id " + str(fid))
            ids.add(fid)
            c.req(f.get("type") == "Feature", str(fid) + ": not a Feature")
            check_geometry(c, str(fid), f["geometry"])

    # --- territories ---
    terr = {f["id"]: f for f in parsed["territories.geojson"]["features"]}
    c.req(set(terr) == {"prov-treviso", "terr-treviso", "terr-asolo", "terr-pieve",
                        "terr-oderzo"}, "territory ids")
    prov_ring = PROVINCE
    PROVINCE_ON_DISK = prov_ring
    prov_area = ring_area(prov_ring[:-1])
    x0, y0, x1, y1 = ring_bbox(prov_ring)
    c.req(11.70 < x0 < 11.80 and 12.63 < x1 < 12.73 and 45.50 < y0 < 45.56 and 46.05 < y1 < 46.11,
          "province bbox %r" % ((x0, y0, x1, y1),))
    tids = sorted(TERRITORY_RINGS)
    total, edges, codes = 0.0, {}, []
    for t in tids:
        ring = TERRITORY_RINGS[t]
        total += abs(ring_area(ring[:-1]))
        for i in range(len(ring) - 1):
            edges.setdefault(frozenset((ring[i], ring[i + 1])), []).append(t)
        p = terr[t]["properties"]
        c.req(p["parent"] == "prov-treviso" and p["level"] == "territory", t + ": props")
        codes += p["comuni"]
    c.req(abs(total - abs(prov_area)) < 1e-9, "territory areas do not sum to the province area")
    # Neighbours share their edges: each edge is the province's or two territories'.
    prov_edges = {frozenset((prov_ring[i], prov_ring[i + 1])) for i in range(len(prov_ring) - 1)}
    for e, owners in edges.items():
        want = 1 if e in prov_edges else 2
        c.req(len(set(owners)) == want == len(owners),
              "edge %r belongs to %r" % (tuple(e), owners))
    c.req(prov_edges <= set(edges), "province edge not covered by a territory")
    all_codes = [code for code, _ in COMUNI]
    c.req(len(all_codes) == 94 and sorted(codes) == sorted(all_codes),
          "comuni not assigned exactly once")
    code_terr = {code: t for t in tids for code in terr[t]["properties"]["comuni"]}
    c.req(code_terr == DISTRICTS, "the territories' comuni are not data/treviso_districts.csv")
    terr_ring = TERRITORY_RINGS
    c.req(sum(terr[t]["properties"]["population"] for t in tids)
          == terr["prov-treviso"]["properties"]["population"], "population sum")

    # --- services ---
    svcs = parsed["services.geojson"]["features"]
    kinds, non_it, always, conf_shelters = {}, 0, 0, 0
    for f in svcs:
        fid, p, g = f["id"], f["properties"], f["geometry"]
        c.req(list(p) == SERVICE_PROPS, fid + ": property list/order")
        c.req(g["type"] == "Point", fid + ": not a Point")
        c.req(p["kind"] in SERVICE_KINDS, fid + ": kind")
        kinds[p["kind"]] = kinds.get(p["kind"], 0) + 1
        c.req(p["comune"] in code_terr, fid + ": unknown comune")
        x, y = g["coordinates"]
        c.req(point_in_ring(x, y, terr_ring.get(code_terr.get(p["comune"]), [(0, 0)] * 3)),
              fid + ": point not inside the territory of its comune")
        c.req(within_province(g), fid + ": outside province")
        c.req(isinstance(p["languages"], list) and p["languages"] and
              all(l in LANGS for l in p["languages"]), fid + ": languages")
        non_it += any(l != "it" for l in p["languages"])
        oh = p["opening_hours"]
        c.req(oh is None or OPENING_RE.match(oh), fid + ": opening_hours %r" % oh)
        always += oh == "24/7"
        c.req(DATE_RE.match(p["last_verified"] or ""), fid + ": last_verified")
        for k in ("referral_required", "confidential", "mobile", "fictional"):
            c.req(isinstance(p[k], bool), fid + ": " + k)
        for k in ("name", "organization", "description"):
            c.req(isinstance(p[k], str) and p[k], fid + ": " + k)
        c.req(p["phone"] is None or PHONE_RE.match(p["phone"]), fid + ": phone")
        if p["kind"] in ("shelter", "reception_centre"):
            c.req(isinstance(p["capacity"], int) and isinstance(p["vacancy"], int)
                  and 0 <= p["vacancy"] <= p["capacity"], fid + ": capacity/vacancy")
        else:
            c.req(p["capacity"] is None and p["vacancy"] is None, fid + ": capacity set")
        if p["kind"] in FICTIONAL_KINDS:
            c.req(p["fictional"] is True, fid + ": must be fictional")
        if p["fictional"]:
            c.req(p["description"].startswith("Fictional demo record."), fid + ": description")
        if p["kind"] == "shelter" and p["confidential"]:
            conf_shelters += 1
            # No address; a phone (fictional here) is its front door in `/nearest`.
            c.req(p["address"] is None and p["phone"] == DEMO_PHONE, fid + ": confidential contact")
    c.req(len(svcs) >= 48, "services: fewer than 48")
    c.req(len(kinds) >= 10, "services: fewer than 10 kinds")
    c.req(non_it >= 12, "services: fewer than 12 with languages beyond it")
    c.req(always >= 1, "services: none open 24/7")
    c.req(conf_shelters >= 2, "services: fewer than 2 confidential shelters")
    itinerant = [f for f in svcs if f["properties"]["kind"] == "focal_point"
                 and f["properties"]["mobile"]]
    c.req(4 <= len(itinerant) <= 5 and len({f["properties"]["organization"]
                                            for f in itinerant}) == 1, "itinerant focal point")
    stable = {code_terr[f["properties"]["comune"]] for f in svcs
              if f["properties"]["kind"] == "focal_point" and not f["properties"]["mobile"]}
    c.req(stable == set(tids), "stable focal point missing in a territory")

    # --- settlements ---
    sets = parsed["settlements.geojson"]["features"]
    c.req(len(sets) >= 18, "settlements: fewer than 18")
    c.req(sum(f["geometry"]["type"] == "Polygon" for f in sets) >= 4,
          "settlements: fewer than 4 polygons")
    for f in sets:
        fid, p = f["id"], f["properties"]
        c.req(within_province(f["geometry"]), fid + ": outside province")
        c.req(p["fictional"] is True and p["notes"].startswith("Fictional demo record"),
              fid + ": fictional flags")
        c.req(5 <= p["population_estimate"] <= 250, fid + ": population_estimate")
        c.req(p["season"] and all(1 <= m <= 12 for m in p["season"]), fid + ": season")
        c.req(p["sector"] in ("agriculture", "viticulture", "logistics", "construction"),
              fid + ": sector")
        c.req(DATE_RE.match(p["last_surveyed"]), fid + ": last_surveyed")

    # --- worksites ---
    wss = parsed["worksites.geojson"]["features"]
    c.req(len(wss) >= 160, "worksites: fewer than 160")
    for f in wss:
        fid, p = f["id"], f["properties"]
        c.req(within_province(f["geometry"]), fid + ": outside province")
        c.req(p["kind"] in WORKSITE_KINDS, fid + ": kind")
        c.req(2 <= p["workers_estimate"] <= 300, fid + ": workers_estimate")
        c.req(p["peak_months"] and all(1 <= m <= 12 for m in p["peak_months"]),
              fid + ": peak_months")
        c.req(p["fictional"] is True and p["notes"].startswith("Fictional demo record"),
              fid + ": fictional flags")
    return c.errors


def summary():
    out = []
    for name in ("territories.geojson", "services.geojson", "settlements.geojson",
                 "worksites.geojson"):
        path = os.path.join(DATA, name)
        with open(path, encoding="utf-8") as fh:
            feats = json.load(fh)["features"]
        by = {}
        for f in feats:
            key = f["properties"].get("kind") or f["properties"].get("sector") \
                or f["properties"].get("level")
            by[key] = by.get(key, 0) + 1
        geoms = {}
        for f in feats:
            geoms[f["geometry"]["type"]] = geoms.get(f["geometry"]["type"], 0) + 1
        out.append("%-20s %8d bytes  %3d features  %s  %s" % (
            name, os.path.getsize(path), len(feats), dict(sorted(geoms.items())),
            dict(sorted(by.items()))))
    return "\n".join(out)


def main(argv):
    if "--check" in argv:
        errors = run_check()
        for e in errors:
            print("ERROR:", e)
        if errors:
            print("%d problem(s) found" % len(errors))
            return 1
        print(summary())
        print("all checks passed")
        return 0
    os.makedirs(DATA, exist_ok=True)
    for name, obj in build_all().items():
        with open(os.path.join(DATA, name), "w", encoding="utf-8", newline="\n") as fh:
            fh.write(dumps(obj))
    print(summary())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
