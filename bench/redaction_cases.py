"""Synthetic coding questions seeded with PHI, with gold spans.

Each template is how coders actually write to a help desk (chart snippets,
claim-denial complaints, quick questions); ``{KIND}`` slots are filled from
small pools of invented identifiers, and the position of every slot is the
gold span.  ``{DOS}`` slots hold a date of service, which must NOT be
redacted; every medical code in the text must survive untouched.

The templates were written before the redactor was run against them and
were not changed to suit it.  ``cases(n, seed)`` is deterministic.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

TEMPLATES = [
    "Patient {NAME}, DOB {DOB}, MRN {MRN}, seen on DOS {DOS} for a joint injection 20610 and E/M 99213. Can we bill both with modifier 25?",
    "Hi, question about pt {NAME} (DOB: {DOB}). Dx E11.22 and N18.31. Is that the right pairing for type 2 diabetes with CKD stage 3a?",
    "Our claim for {NAME} was denied, member ID {ACCOUNT}. We billed 99214-25 and 11102 on {DOS_LABELLED}. Denial says NCCI edit. Thoughts?",
    "Mrs. {LAST} called from {PHONE} asking why 20610 was billed. Her DOB is {DOB}. How do I explain the code?",
    "Re: {NAME} - MRN# {MRN}\nShe had a cryoablation of a renal mass (50250). Address on file {ADDRESS}. Which ICD-10 fits a 3 cm lesion, C64.1?",
    "Coding question: patient name: {NAME}; SSN {SSN}; DOS {DOS}. Procedure J1030 methylprednisolone 40 mg x2 units. Is MUE 1 or more?",
    "Mr. {LAST} ({PHONE}) had 93000 and 99213 the same day. Is there a bundling issue? His email is {EMAIL} if you need him.",
    "Pt {NAME}, {AGE} y/o male, acct # {ACCOUNT}, presents with COPD exacerbation J44.1. Is J44.0 also needed when pneumonia J18.9 is present?",
    "Can you check 64483 with 64484 for {NAME}? Date of service {DOS}. DOB {DOB}. Payer is Medicare, MBI {MBI}.",
    "Patient lives at {ADDRESS}. Home health visit G0299 on {DATE}. Is that still valid or replaced?",
    "Fax from Dr. office re: {NAME}, born {DOB}, policy number {ACCOUNT}. Question: Z79.4 with E11.9 - does long term insulin go first?",
    "{NAME} (MRN {MRN}) underwent 27447 total knee on {DATE}. Post-op visit 99024 billed - global period 90 days, correct?",
    "Subscriber {NAME}, group # {ACCOUNT}, dependent. Claim for 90471 and 90686 flu vaccine denied for frequency. Any modifier?",
    "Quick one: what's the ICD-10 for CKD 3b? Patient is {NAME}, DOB {DOB}. Nephrology note says N18.32.",
    "Our patient {NAME} called on {DATE} from {PHONE}. Billing asks whether 99442 telephone E/M is still active in 2026.",
    "Hello,\nAttached is the note for {NAME}.\nMRN: {MRN}\nDOB: {DOB}\nDOS: {DOS}\nProcedures: 43239, 43235. Can both be reported?",
    "Patient {LASTFIRST} DOB {DOB} - right knee arthrocentesis 20610-RT with ultrasound 76942. NCCI says 0 or 1 indicator?",
    "Please review for {NAME}: email {EMAIL}, phone {PHONE}. Question is about G0444 depression screen with 99397 preventive.",
    "The member's address is {ADDRESS} and member ID {ACCOUNT}. Ambulance A0427 with A0425 mileage - which modifier for origin/destination?",
    "{NAME} ({AGE}F) presented {DATE} with UTI N39.0 and E. coli B96.20. Is the sequencing right?",
    "Question regarding Mr. {NAME}. DOB {DOB}. He got J3301 triamcinolone 10 mg x 4 and 20610. Units ok?",
    "We saw {NAME} for a wellness visit G0439 plus 99213-25 for hypertension I10. DOS {DOS}. Claim # {ACCOUNT}. Allowed together?",
    "Chart number {MRN}: {NAME}, {AGE} year old, fracture S52.521A. What 7th character for the follow-up visit on {DOS_LABELLED}?",
    "Hi team - {NAME}'s insurance (policy {ACCOUNT}) rejected 97110 and 97140 together. Do we need 59 or XU?",
    "Please call the patient's daughter {NAME} at {PHONE} about the 99233 billing. Patient DOB {DOB}.",
    "patient: {NAME}\nssn: {SSN}\naddress: {ADDRESS}\nwhat is the difference between 99204 and 99214?",
    "Is 36415 bundled into 99213? Patient {NAME}, visit {DATE}. Thank you!",
    "For {NAME}, DOB {DOB}, the surgeon billed 49505 inguinal hernia with 49568 mesh. Is mesh separately reportable?",
    "Encounter #{ACCOUNT} for {NAME}: pressure ulcer L89.154 debridement 11042. Which ICD-10 for stage 4 sacral?",
    "Mrs. {NAME} DOB {DOB} MRN {MRN} - bilateral cataract 66984-RT and 66984-LT on different dates, {DATE} and {DATE}. Modifier 79?",
    "Dear coding desk, our biller {NAME} asks: can we report 99291 and 99292 for {NAME2} (MRN {MRN}) on {DOS_LABELLED}?",
    "Medicaid ID {ACCOUNT}, beneficiary {NAME}. Dental anesthesia D9223 vs 00170 - which applies?",
    "{NAME} needs a prior auth for E0601 CPAP. Home address {ADDRESS}. Does G47.33 support it?",
    "I'm coding for Ms. {LAST}, seen {DATE}, email {EMAIL}. Is Z00.00 or Z00.01 right when we find a new problem?",
    "Patient's name is {NAME}. DOB {DOB}. Insurance acct {ACCOUNT}. She had 59400 global OB. Is 99213 separately billable for the flu?",
    "Re: account number {ACCOUNT} / {NAME}. Can 96372 be billed with J1885 ketorolac?",
    "Pt {NAME} SSN {SSN} phone {PHONE}. ICD-10 for obesity BMI 40 (E66.01 + Z68.41)?",
    "Hi! {NAME} at {ADDRESS} came in on DOS {DOS} with a laceration repair 12002 and 12011. Do we add them or bill separately?",
    "Regarding {NAME}, age {AGE}, DOB {DOB}: is I25.10 appropriate with I20.9 angina?",
    "Our denial for {NAME}, MRN {MRN}, DOS {DOS}: 88305 x 3 units exceeded MUE. How many are allowed?",
    "Forwarding from front desk: patient {NAME} ({PHONE}, {EMAIL}) wants to know why 99214 was billed, not 99213.",
    "Nurse note: {NAME} received flu shot 90686 and admin G0008 on {DATE}. Medicare Part B. MBI {MBI}. Is G0008 right?",
]

# Written after the redactor was tuned on TEMPLATES and never run against it
# before being committed: harder phrasings (lower-case names, names without a
# cue, run-together numbers).  Reported separately as a held-out check.
HARD_TEMPLATES = [
    "pt {LOWERNAME} came in {DATE} for 99213, can i add G2211?",
    "Billing for {NAME} only - she is {AGE}. Codes 20610 and J3301. Tel {PHONE}",
    "{LASTFIRST} (acct {ACCOUNT}) - 93000 vs 93010, which one for the reading only?",
    "Spoke with {NAME} today about her E11.65 claim; callback {PHONE}, mail {EMAIL}.",
    "Beneficiary info: {NAME} / {DOB} / {ADDRESS}. Question: G0439 frequency?",
    "DOB {DOB}; name {LOWERNAME}; ICD-10 Z23 with 90686?",
    "We treated {NAME} at home ({ADDRESS}) - is 99349 right for a home visit?",
    "MRN {MRN} / {NAME}: 11042 + 97597 same session?",
    "Our biller asks about {NAME}'s 99285-25 with 12001. Seen {DATE}. SSN on file {SSN}.",
    "{NAME} was born {DOB} and had 90471 today; Medicare ID {MBI}.",
]

# Written after every rule above existed, committed with its first score,
# and not used to change the redactor: the honest held-out figure.
FRESH_TEMPLATES = [
    "Good morning! Our provider saw {NAME} in clinic. She has a home phone of {PHONE}. Is 99214 supported for a 40 minute visit?",
    "Hi - {LAST} family called again re: the bill. Account {ACCOUNT}. They want to know what J0696 is.",
    "The insured is {NAME} ({DOB}), policy #{ACCOUNT}. Wound care 97597 plus 11042?",
    "Can you confirm 82962 for a glucose check? Resident {NAME}, room 12, DOB: {DOB}, MR# {MRN}.",
    "Patient {LASTFIRST}, SSN {SSN}, needs L3908 wrist splint coded with S62.101A.",
    "email from {EMAIL}: 'is 96413 with 96415 ok for 2 hour chemo?' - please answer to {NAME}",
    "Mailing address for the refund: {NAME}, {ADDRESS}. Original claim used 99203.",
    "{NAME}, a {AGE} year old, seen {DATE} for annual wellness G0438. Is G0438 once per lifetime?",
    "Sent by {NAME} on behalf of Dr. office; pt DOB {DOB}; question: can 17110 be billed with 11055?",
    "Mr {LAST} (MRN {MRN}) asked why his copay changed for 90837. Cell {PHONE}.",
]

# Written from the phrasings a reviewer reported in issue 15 ("acct #A99812",
# a lower-case "mrs. garcia") and committed before the redactor was changed;
# its first score is recorded in bench/results/redaction.json as "before".
REPORTED_TEMPLATES = [
    "acct #{ACCTSHORT} for mrs. {LOWERLAST} - can 20610 go with 99213-25?",
    "spoke to mrs. {LOWERLAST} today, she asked about J3301 units.",
    "Acct #{ACCTSHORT}: denial for 97110 and 97140, do we need 59?",
    "mr. {LOWERLAST} (acct# {ACCTSHORT}) had 93000 and 99214 on the same day.",
    "Account #{ACCTSHORT} / ms. {LOWERLAST}: is E11.22 with N18.31 right?",
    "re: acct {ACCTSHORT}, mrs {LOWERLAST} called about 99442.",
    "Coding question for patient {NAME}: 64483 with 64484?",
    "please check acct #{ACCTSHORT} - pt is mrs. {LOWERLAST}, DOB {DOB}. G0439?",
]

FIRST = ["John", "Maria", "Wei", "Fatima", "Robert", "Aisha", "Dmitri", "Lakshmi", "Carlos", "Eleanor",
         "Tomasz", "Nkechi", "Hiroshi", "Brittany", "Ahmed", "Siobhan", "Jorge", "Ingrid", "Kwame", "Mei"]
LAST = ["Smith", "Garcia", "Nguyen", "O'Connor", "Kowalski", "Okafor", "Tanaka", "Haddad", "Johansson",
        "Patel", "McAllister", "Delgado", "Abernathy", "Lindqvist", "Mbeki", "Rossi", "Fitzgerald", "Yilmaz"]
STREETS = ["Oak St", "Maple Avenue", "W. Elm Street", "Harbor View Drive", "Lincoln Blvd", "Sunset Road",
           "Pine Ln", "Cedar Ridge Court", "Mill Creek Way", "Second Ave"]
CITIES = [("Springfield", "IL"), ("Austin", "TX"), ("Portland", "OR"), ("Bangor", "ME"), ("Tucson", "AZ"),
          ("Albany", "NY"), ("Boise", "ID"), ("Mobile", "AL")]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]


@dataclass
class Case:
    text: str
    gold: list[tuple[int, int, str]] = field(default_factory=list)   # PHI spans
    keep: list[tuple[int, int, str]] = field(default_factory=list)   # DOS spans that must stay


def _date(rng: random.Random, lo: int, hi: int) -> str:
    y, m, d = rng.randint(lo, hi), rng.randint(1, 12), rng.randint(1, 28)
    style = rng.randrange(5)
    if style == 0:
        return f"{m:02d}/{d:02d}/{y}"
    if style == 1:
        return f"{m}/{d}/{y % 100:02d}"
    if style == 2:
        return f"{y}-{m:02d}-{d:02d}"
    if style == 3:
        return f"{MONTHS[m - 1]} {d}, {y}"
    return f"{d} {MONTHS[m - 1][:3]} {y}"


def _fill(kind: str, rng: random.Random) -> str:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    if kind in ("NAME", "NAME2"):
        return rng.choice([f"{first} {last}", f"{first} {last}", f"{first} {rng.choice('ABCDEJKLMR')}. {last}"])
    if kind == "LOWERNAME":
        return f"{first} {last}".lower()
    if kind == "LAST":
        return last
    if kind == "LOWERLAST":
        return last.lower()
    if kind == "ACCTSHORT":     # short letter-led account numbers look like undotted ICD-10 codes (A99812)
        return f"{rng.choice('ABCDKMTW')}{rng.randint(10000, 99999)}"
    if kind == "LASTFIRST":
        return f"{last}, {first}"
    if kind == "DOB":
        return _date(rng, 1935, 2015)
    if kind in ("DATE", "DOS", "DOS_LABELLED"):
        return _date(rng, 2025, 2026)
    if kind == "MRN":
        return rng.choice([f"{rng.randint(100000, 99999999)}", f"A{rng.randint(1000000, 9999999)}",
                           f"MR-{rng.randint(10000, 999999)}"])
    if kind == "SSN":
        return f"{rng.randint(100, 899)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"
    if kind == "PHONE":
        a, b, c = rng.randint(201, 989), rng.randint(200, 999), rng.randint(1000, 9999)
        return rng.choice([f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"{a}.{b}.{c}", f"+1 {a} {b} {c}"])
    if kind == "EMAIL":
        return f"{first.lower()}.{last.lower().replace(chr(39), '')}{rng.randint(1, 99)}@{rng.choice(['example.com', 'mail.example.org', 'clinic.example.net'])}"
    if kind == "ADDRESS":
        city, state = rng.choice(CITIES)
        street = f"{rng.randint(1, 9999)} {rng.choice(STREETS)}"
        return rng.choice([street, f"{street}, {city}, {state} {rng.randint(10000, 99999)}",
                           f"{street}, Apt {rng.randint(1, 40)}{rng.choice('ABC')}, {city}, {state} {rng.randint(10000, 99999)}"])
    if kind == "ACCOUNT":
        return rng.choice([f"{rng.randint(1000000, 999999999)}", f"XKH{rng.randint(100000000, 999999999)}",
                           f"W{rng.randint(10000000, 99999999)}-01", f"{rng.randint(10000, 99999)}-{rng.randint(100, 999)}"])
    if kind == "MBI":
        return f"{rng.randint(1, 9)}EG{rng.randint(1, 9)}TE{rng.randint(1, 9)}MK{rng.randint(10, 99)}"
    if kind == "AGE":
        return str(rng.randint(18, 88))
    raise KeyError(kind)


_SLOT = re.compile(r"\{([A-Z_0-9]+)\}")
_GOLD_KIND = {"NAME2": "NAME", "LAST": "NAME", "LASTFIRST": "NAME", "LOWERNAME": "NAME", "LOWERLAST": "NAME",
              "MBI": "ACCOUNT", "ACCTSHORT": "ACCOUNT"}
_NOT_PHI = {"AGE"}


def build(template: str, rng: random.Random) -> Case:
    case = Case("")
    out, pos = [], 0
    names: dict[str, str] = {}
    for m in _SLOT.finditer(template):
        out.append(template[pos:m.start()])
        kind = m.group(1)
        if kind == "DOS_LABELLED":
            out.append("date of service ")
        value = names.get(kind) if kind in ("NAME", "LAST", "LOWERLAST") else None
        value = value or _fill(kind, rng)
        names.setdefault(kind, value)
        start = sum(len(p) for p in out)
        out.append(value)
        end = start + len(value)
        if kind in ("DOS", "DOS_LABELLED"):
            case.keep.append((start, end, "DOS"))
        elif kind not in _NOT_PHI:
            case.gold.append((start, end, _GOLD_KIND.get(kind, kind)))
        pos = m.end()
    out.append(template[pos:])
    case.text = "".join(out)
    return case


def cases(n: int = 126, seed: int = 20261124, templates: list[str] = TEMPLATES) -> list[Case]:
    rng = random.Random(seed)
    return [build(templates[i % len(templates)], rng) for i in range(n)]


def hard_cases(n: int = 40, seed: int = 7) -> list[Case]:
    return cases(n, seed, HARD_TEMPLATES)


def fresh_cases(n: int = 40, seed: int = 11) -> list[Case]:
    return cases(n, seed, FRESH_TEMPLATES)


def reported_cases(n: int = 32, seed: int = 15) -> list[Case]:
    return cases(n, seed, REPORTED_TEMPLATES)


CODE_TOKEN = re.compile(r"\b(?:\d{4}[0-9FT]|[A-Z]\d{4}|[A-TV-Z]\d[0-9A-Z](?:\.[0-9A-Z]{1,4})?)(?:-(?:\d{2}|[A-Z]{2}))?\b")
