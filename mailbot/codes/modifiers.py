"""Plain-language guidance for the common CPT/HCPCS modifiers, written by us.

These are our own short explanations for coders, not the AMA's CPT modifier
descriptors (which are licensed) nor CMS text.  HCPCS Level II modifiers
also carry their official CMS descriptor from the imported HCPCS file.
"""

from __future__ import annotations

EXPLANATIONS: dict[str, str] = {
    "22": "The work was substantially greater than usual for this procedure; documentation must show why "
          "(time, difficulty, patient condition). Expect review and possibly more payment.",
    "24": "An E/M visit during the postoperative period that is unrelated to the surgery.",
    "25": "A significant, separately identifiable E/M service by the same provider on the same day as a "
          "procedure or other service. The note must support the E/M on its own, beyond the usual pre- and "
          "post-procedure work. It goes on the E/M code, not the procedure.",
    "26": "Professional component only: the physician's interpretation and report, not the equipment, "
          "technician or facility part (that is TC).",
    "TC": "Technical component only: equipment, supplies and technician work, without the physician's "
          "interpretation (that is 26).",
    "50": "Bilateral procedure done on both sides in the same session. Check the fee schedule's bilateral "
          "indicator: some payers want one line with 50, others two lines with RT and LT.",
    "51": "Multiple procedures by the same provider in the same session; the secondary procedures are "
          "usually paid at a reduced rate. Many payers apply it themselves.",
    "52": "Reduced service: part of the procedure was not done, at the provider's choice.",
    "53": "Discontinued procedure: started but stopped because of a threat to the patient's well-being.",
    "57": "The E/M visit resulted in the decision to do major surgery (90-day global) the same or next day.",
    "58": "A staged or related procedure by the same provider during the postoperative period (planned, "
          "more extensive, or therapy after a diagnostic procedure). Starts a new global period.",
    "59": "Distinct procedural service: a procedure that is normally bundled was done separately (other "
          "session, site, organ, incision or injury). Use only when no more specific X modifier (XE, XS, "
          "XP, XU) fits; it bypasses NCCI edits, so auditors look at it closely.",
    "62": "Two surgeons, each doing a distinct part of one procedure (co-surgery); each reports the code with 62.",
    "76": "Repeat procedure or service by the same physician on the same day.",
    "77": "Repeat procedure or service by a different physician on the same day.",
    "78": "Unplanned return to the operating room for a related procedure during the postoperative period.",
    "79": "An unrelated procedure by the same physician during the postoperative period of another one.",
    "80": "Assistant surgeon.",
    "82": "Assistant surgeon when a qualified resident surgeon was not available.",
    "91": "A repeat clinical lab test on the same day to get a new result (not to confirm or re-run a "
          "failed test).",
    "95": "Synchronous telemedicine service by real-time audio and video.",
    "XE": "Separate encounter: the service was done at a different encounter on the same day. A more "
          "specific alternative to 59.",
    "XS": "Separate structure: a different organ or structure. A more specific alternative to 59.",
    "XP": "Separate practitioner: done by a different practitioner. A more specific alternative to 59.",
    "XU": "Unusual non-overlapping service: distinct, and not a component of the main service. A more "
          "specific alternative to 59.",
    "RT": "Right side of the body.",
    "LT": "Left side of the body.",
    "GA": "A waiver of liability (ABN) is on file: the patient was told Medicare would likely deny it and "
          "agreed to pay.",
    "GY": "Statutorily excluded from Medicare, or not a Medicare benefit; tells the payer a denial is expected.",
    "GZ": "Expected to be denied as not reasonable and necessary, and NO ABN is on file; the provider "
          "cannot bill the patient if denied.",
    "KX": "Requirements in the medical policy were met (e.g., therapy above the threshold is medically "
          "necessary and documented).",
    "GT": "Telehealth via interactive audio and video (some payers still ask for it; Medicare uses 95 "
          "and place of service).",
    "GP": "Service delivered under an outpatient physical therapy plan of care.",
    "GO": "Service delivered under an outpatient occupational therapy plan of care.",
    "GN": "Service delivered under an outpatient speech-language pathology plan of care.",
    "Q6": "Service by a substitute physician under a fee-for-time (locum tenens) arrangement.",
    "JW": "Drug amount discarded (not given) from a single-use vial; reported on its own line.",
    "JZ": "No drug was discarded from a single-use container.",
    "FA": "Left hand, thumb.", "F5": "Right hand, thumb.",
    "TA": "Left foot, great toe.", "T5": "Right foot, great toe.",
}


def explain(modifier: str) -> str | None:
    """Our plain-language guidance for ``modifier`` (``"25"``, ``"-59"``, ``"xs"``), or None."""
    key = (modifier or "").strip().lstrip("-").upper()
    return EXPLANATIONS.get(key)
