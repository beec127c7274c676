"""Can these be billed together: NCCI PTP pairs, MUEs, add-on codes, global periods.

Facts come from the loaded tables only, each named with its version; a
table that is not loaded is said to be not loaded, never "checked".  Rules
the tables do not hold come from the table below (CMS manual rules, cited).
"""

from __future__ import annotations

import re

from mailbot.answers.kb import KB
from mailbot.answers.model import NOT_RECOMMENDED, RECOMMENDED, Answer, Line

EM = re.compile(r"^99(?:2\d{2}|4\d{2})$")
OFFICE_EM = re.compile(r"^992(?:0[2-5]|1[1-5])$")
GLOBAL_MEANING = {
    "000": "0-day global period: endoscopy or minor procedure; the same-day E/M is included unless significant "
           "and separately identifiable (modifier 25)",
    "010": "10-day global period: minor procedure; related visits in the 10 days after are included "
           "(report 99024 for a post-operative visit)",
    "090": "90-day global period: major surgery; the day before, the day of and 90 days after are included "
           "(57 for the decision for surgery, 24 for an unrelated E/M, 78 / 79 / 58 for procedures)",
    "ZZZ": "add-on code: it is reported only with its primary procedure, within the primary's global period",
    "XXX": "global concept does not apply",
    "YYY": "global period set by the Medicare contractor",
    "MMM": "maternity global",
}
SOURCE_GLOBAL = "Medicare Claims Processing Manual ch. 12 sec. 40 (global surgery)"
SOURCE_G0463 = "CMS OPPS: hospital outpatient clinic visits are reported with G0463 (since 2014-01-01)"
SOURCE_ONE_EM = "Medicare Claims Processing Manual ch. 12 sec. 30.6.5 (one E/M per day, same physician)"


SETTING_NAMES = {"practitioner": "practitioner (professional claim)", "hospital": "hospital outpatient"}
SOURCE_ASC = "CMS NCCI: ambulatory surgical centers are subject to the practitioner PTP edits"


def ncci_setting(facts) -> tuple[str, str]:
    """``(table setting, why)``: the NCCI PTP table that decides for the question's claim."""
    if facts.setting == "hospital":
        return "hospital", "the question is about a hospital outpatient claim"
    if facts.setting == "asc":
        return "practitioner", "an ASC claim is edited with the practitioner PTP table"
    if facts.setting == "practitioner":
        return "practitioner", "the question is about a practitioner (professional) claim"
    return "practitioner", "no setting stated: a practitioner (professional) claim is assumed"


def resolve(kb: KB, facts, answer: Answer) -> None:
    setting, setting_why = ncci_setting(facts)
    procedures = [line for line in answer.recommended if line.system in ("cpt", "hcpcs")]
    for line in procedures:
        rvu = kb.rvu(line.code)
        if rvu and rvu.get("global_days") in GLOBAL_MEANING and rvu["global_days"] != "XXX":
            days = rvu["global_days"]
            answer.rule(f"{line.code}: {days} -- {GLOBAL_MEANING[days]}",
                        f"Physician Fee Schedule {rvu.get('version', '')} global days; {SOURCE_GLOBAL}")
            if days == "ZZZ":
                answer.facts.setdefault("add_on", []).append(line.code)
            _postop_visit(kb, facts, answer, line, days)
    codes = list(dict.fromkeys(line.code for line in procedures))
    if codes:
        result = kb.check(codes, setting=setting)
        _pairs(answer, result, setting, setting_why, len(codes))
        _addons(answer, result)
        _mues(answer, result, setting)
    if not any(m in answer.modifiers for m in ("24", "25", "57")):
        from mailbot.answers.resolvers.modifier import em_with_procedure

        em_with_procedure(kb, facts, answer, set())
    _one_em_per_day(answer)
    _hospital_clinic_visit(kb, facts, answer)


def _pairs(answer: Answer, result: dict, setting: str, setting_why: str, count: int) -> None:
    """The pairs of the table that decides for the claim; a table not loaded is said to be not checked."""
    table = result.get("ncci_table")
    answer.facts["ncci_setting"] = {"setting": setting, "why": setting_why, "table": table or "not loaded"}
    if count >= 2 and not table:
        answer.rule(f"NCCI {SETTING_NAMES[setting]} PTP edits decide for this claim ({setting_why}) and are not "
                    "loaded in this installation: the pairs among these codes were NOT checked for it",
                    "code sets loaded in this installation")
        if setting == "practitioner" and result.get("other_settings"):
            answer.rule("the shipped hospital outpatient NCCI table does not decide a practitioner claim "
                        "(hospitals bill clinic visits as G0463, so their pairs differ)",
                        "CMS NCCI: separate practitioner and hospital PTP tables")
    elif count >= 2 and not result.get("pairs"):
        answer.rule(f"no NCCI PTP edit between {', '.join(c['code'] for c in result.get('codes') or [])} "
                    f"in {table} ({setting_why})", table)
    for pair in result.get("pairs") or []:
        answer.rule(pair.get("message") or f"NCCI pair {pair['column1']} / {pair['column2']}",
                    f"{table or 'NCCI PTP ' + setting} ({setting_why})")
        answer.facts.setdefault("ncci_pairs", []).append(
            {k: pair.get(k) for k in ("column1", "column2", "modifier_indicator", "version", "setting")})
        if pair.get("modifier_indicator") == "0":
            col2 = answer.line(pair["column2"])
            if col2 is not None and not EM.match(col2.code):
                col2.role, col2.why = NOT_RECOMMENDED, (f"bundled into {pair['column1']} (NCCI indicator 0: "
                                                        "no modifier allows both)")
    for other in result.get("other_settings") or []:
        for pair in other.get("pairs") or []:
            # another setting's table: a fact for that kind of claim, not this answer's verdict
            answer.rule(f"for a {SETTING_NAMES.get(other['setting'], other['setting'])} claim only: "
                        f"{pair.get('message')}", f"{other.get('table')} (not the table for this claim)")


def _addons(answer: Answer, result: dict) -> None:
    """Add-on codes (I/OCE add-on lists): a missing primary code is asked for."""
    for addon in result.get("addons") or []:
        answer.facts.setdefault("add_on", [])
        if addon["code"] not in answer.facts["add_on"]:
            answer.facts["add_on"].append(addon["code"])
        answer.rule(addon["message"], addon.get("version") or "I/OCE add-on code lists")
        if addon.get("missing_primary"):
            primaries = addon.get("primaries") or []
            answer.ask_once(f"{addon['code']} is an add-on code: which primary procedure was reported with it "
                            f"({', '.join(primaries[:6])}{' ...' if len(primaries) > 6 else ''})?")


def _mues(answer: Answer, result: dict, setting: str) -> None:
    for entry in result.get("codes") or []:
        mue = entry.get("mue")
        if not isinstance(mue, dict):
            continue
        answer.rule(f"MUE for {entry['code']}: {mue.get('value')} units per day"
                    + (f" ({mue['adjudication']})" if mue.get("adjudication") else ""),
                    f"MUE {setting} table, {mue.get('version') or ''}")
        line = answer.line(entry["code"])
        if line is not None and line.units and mue.get("value") and line.units > int(mue["value"]):
            answer.ask_once(f"{line.billed} exceeds the MUE of {mue['value']} units per day: is there documentation "
                            "of medical necessity for the extra units (or a second date of service)?")


def _postop_visit(kb: KB, facts, answer: Answer, line: Line, days: str) -> None:
    m = re.search(r"(\d+)\s*days? (?:after|post)", facts.text, re.I)
    if not m or days not in ("010", "090") or re.search(r"unrelated", facts.text, re.I):
        return
    if int(m.group(1)) <= int(days) and kb.reportable("99024"):
        answer.add(Line("99024", "cpt", RECOMMENDED,
                        f"a related visit {m.group(1)} days after {line.code} is inside its {days}-day global period: "
                        "report 99024 (no charge) instead of an E/M", version=kb.version("99024"), source="bundle"))
        for em in [x for x in answer.recommended if EM.match(x.code)]:
            em.role, em.why = NOT_RECOMMENDED, f"included in the global period of {line.code}"


def _one_em_per_day(answer: Answer) -> None:
    ems = [line for line in answer.recommended if OFFICE_EM.match(line.code)]
    if len(ems) < 2:
        return
    keep = max(ems, key=lambda line: line.code)
    for line in ems:
        if line is not keep:
            line.role, line.why = NOT_RECOMMENDED, f"one office E/M per day: report {keep.code} for the combined work"
    answer.rule("the same physician reports one office E/M per day, at the level of the combined work", SOURCE_ONE_EM)


def _hospital_clinic_visit(kb: KB, facts, answer: Answer) -> None:
    if facts.setting != "hospital" or facts.payer not in ("Medicare", "") or not re.search(
            r"clinic visit|office visit|\be/m\b|99\d{3}", facts.text, re.I):
        return
    if not kb.reportable("G0463"):
        return
    answer.add(Line("G0463", "hcpcs", RECOMMENDED, "hospital outpatient clinic visit under OPPS (facility claim)",
                    kb.title("G0463"), version=kb.version("G0463"), source="bundle"))
    for line in [x for x in answer.recommended if OFFICE_EM.match(x.code)]:
        line.role, line.why = NOT_RECOMMENDED, "the hospital's claim uses G0463; the practitioner bills the E/M"
    answer.rule("Medicare hospital outpatient clinic visits are billed with G0463 on the facility claim", SOURCE_G0463)
