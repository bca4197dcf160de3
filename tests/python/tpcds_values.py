"""The values generated TPC-DS rows draw from: the categories, brands,
states, counties, zip codes, names, demographics, carriers and reasons the 99
queries filter on, so that their predicates meet rows."""

import numpy as np

SYLLABLES = ["bar", "ought", "able", "pri", "ese", "anti", "cally", "ation", "eing", "n st"]
CATEGORIES = {
    "Women": ["dresses", "fragrances", "maternity", "swimwear"],
    "Men": ["accessories", "pants", "shirts", "sports-apparel"],
    "Children": ["infants", "newborn", "school-uniforms", "toddlers"],
    "Shoes": ["athletic", "kids", "mens", "womens"],
    "Music": ["classical", "country", "pop", "rock"],
    "Jewelry": ["birdal", "bracelets", "estate", "rings"],
    "Home": ["bedding", "furniture", "kids", "lighting"],
    "Sports": ["baseball", "fitness", "football", "golf"],
    "Books": ["computers", "fiction", "reference", "self-help"],
    "Electronics": ["cameras", "personal", "portable", "stereo"],
}
# Brands the queries name, under the category and class the queries pair them with.
QUERY_BRANDS = {
    ("Books", "reference"): "scholaramalgamalg #14",
    ("Books", "self-help"): "scholaramalgamalg #7",
    ("Electronics", "portable"): "exportiunivamalg #9",
    ("Electronics", "personal"): "scholaramalgamalg #9",
    ("Women", "fragrances"): "amalgimporto #1",
    ("Music", "classical"): "edu packscholar #1",
    ("Men", "pants"): "exportiimporto #1",
    ("Men", "accessories"): "importoamalg #1",
}
BRAND_SYLLABLES = ["amalg", "importo", "edu pack", "exporti", "scholar", "corp", "namelessmaxi", "univ", "brand",
                   "maxi"]
COLORS = ["blanched", "brown", "burlywood", "burnished", "cornflower", "cyan", "deep", "floral", "forest",
          "frosted", "ghost", "honeydew", "indian", "khaki", "light", "medium", "midnight", "orange", "papaya",
          "peach", "powder", "purple", "slate", "snow", "spring", "almond", "navy", "red", "white", "yellow"]
UNITS = ["Box", "Bunch", "Bundle", "Carton", "Case", "Cup", "Dozen", "Dram", "Each", "Gram", "Gross", "Lb", "N/A",
         "Ounce", "Oz", "Pallet", "Pound", "Tbl", "Ton", "Tsp"]
# The colors, units and sizes query 41 looks for, which half the items of these categories have.
OUTFITS = {
    "Women": [("powder", "Ounce", "medium"), ("khaki", "Oz", "extra large"), ("brown", "Bunch", "N/A"),
              ("honeydew", "Ton", "small"), ("midnight", "Pallet", "medium"), ("snow", "Gross", "extra large"),
              ("cyan", "Cup", "N/A"), ("papaya", "Dram", "small")],
    "Men": [("floral", "N/A", "petite"), ("deep", "Dozen", "petite"), ("light", "Box", "medium"),
            ("cornflower", "Pound", "extra large"), ("orange", "Each", "petite"), ("frosted", "Tbl", "petite"),
            ("forest", "Lb", "medium"), ("ghost", "Bundle", "extra large")],
}
SIZES = ["N/A", "economy", "extra large", "large", "medium", "petite", "small"]
# Manufacturer ids the queries name, the range one of them scans, and a few more.
MANUFACT_IDS = [128, 129, 270, 350, 423, 677, 694, 808, 821, 940, 977, *range(738, 779, 4), 12, 77, 310, 515, 606]

STATES = {  # state: GMT offset
    "AR": -6, "CA": -8, "CO": -7, "CT": -5, "GA": -5, "IA": -6, "IL": -6, "IN": -5, "KY": -5, "LA": -6,
    "MN": -6, "MS": -6, "ND": -6, "NJ": -5, "NM": -7, "OH": -5, "OK": -6, "OR": -8, "TN": -5, "TX": -6,
    "VA": -5, "WA": -8, "WI": -6,
}
# How much likelier than others the states are that the queries name alone (GA in 16, 30 and 81; IL in 94, 95).
STATE_WEIGHTS = np.array([{"GA": 4, "IL": 2}.get(state, 1) for state in STATES], dtype=float)
COUNTIES = ["Williamson County", "Franklin Parish", "Bronx County", "Orange County", "Dona Ana County",
            "Jefferson County", "La Porte County", "Rush County", "Toole County", "Fairfield County"]
CITIES = ["Midway", "Fairview", "Edgewood", "Oak Grove", "Five Points", "Pleasant Hill", "Centerville",
          "Riverside", "Greenwood", "Union", "Salem", "Oakland", "Georgetown", "Glendale", "Springdale"]
# Zip codes from the lists queries 8, 15 and 45 look for.
ZIPS = ["24128", "76232", "65084", "87816", "20548", "15126", "91137", "61265", "17920", "40081", "28577",
        "38607", "85669", "86197", "88274", "83405"]
STORE_ZIPS = ZIPS[:4]
STREETS = ["Main", "Oak", "Park", "Cedar", "Elm", "Lake", "Hill", "Washington", "Sunset", "Ridge"]
STREET_TYPES = ["Street", "Ave", "Blvd", "Road", "Drive", "Lane", "Court", "Way"]
COUNTRIES = ["UNITED STATES", "CANADA", "MEXICO", "CHILE", "GERMANY", "JAPAN", "INDIA", "FRANCE"]
FIRST_NAMES = ["James", "Mary", "John", "Patricia", "Robert", "Linda", "Michael", "Barbara", "William",
               "Elizabeth", "David", "Jennifer", "Richard", "Maria", "Joseph", "Susan"]
LAST_NAMES = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
              "Martinez", "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson"]
GENDERS = ["M", "F"]
MARITAL_STATUSES = ["M", "S", "D", "W", "U"]
EDUCATION_STATUSES = ["Primary", "Secondary", "College", "2 yr Degree", "4 yr Degree", "Advanced Degree",
                      "Unknown"]
CREDIT_RATINGS = ["Good", "High Risk", "Low Risk", "Unknown"]
BUY_POTENTIALS = ["0-500", "501-1000", "1001-5000", "5001-10000", ">10000", "Unknown"]
STORE_NAMES = ["able", "ation", "bar", "eing", "ese", "ought", "anti", "cally", "pri", "n st"]
SHIP_TYPES = ["REGULAR", "EXPRESS", "NEXT DAY", "OVERNIGHT", "TWO DAY", "LIBRARY"]
SHIP_CODES = ["AIR", "SURFACE", "SEA", "BIKE", "HAND", "MESSENGER"]
CARRIERS = ["UPS", "FEDEX", "AIRBORNE", "USPS", "DHL", "TBS", "ZHOU", "ZOUROS", "MSC", "LATVIAN", "ALLIANCE",
            "ORIENTAL", "BARIAN", "BOXBUNDLES", "GREAT EASTERN", "DIAMOND", "RUPEKSA", "GERMA", "HARMSTORF",
            "PRIVATECARRIER"]
REASONS = ["Package was damaged", "Stopped working", "Did not get it on time", "Not the product that was ordred",
           "Parts missing", "Does not work with a product that I have", "Gift exchange", "Did not like the color",
           "Did not like the model", "Did not like the make", "Did not like the warranty",
           "No service location in my area", "Found a better price in a store",
           "Found a better extended warranty in a store", "Not working any more", "Did not fit", "Wrong size",
           "Lost my job", "unauthoized purchase", "duplicate purchase", "its is a boy", "it is a girl",
           *(f"reason {n}" for n in range(23, 36))]
DAY_NAMES = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
HOLIDAYS = {(1, 1), (7, 4), (12, 25)}
MANAGERS = [f"{first} {last}" for first in FIRST_NAMES for last in LAST_NAMES]
