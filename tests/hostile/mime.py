"""Hypothesis strategies for hostile email: generated MIME structures, not
mutations of a corpus (``tests/mail/test_parse_fuzz.py`` does those).

A message is a header block -- random known and unknown fields, malformed
encoded words, undeclared 8-bit, NUL bytes, very long and folded lines,
missing fields -- over a body that is a leaf (text, HTML, binary, a
forwarded message, a delivery report) or a multipart whose boundaries may be
empty, missing, mismatched or never closed, nested a few levels, sometimes
hundreds of levels.  Line ends are LF, CRLF or a mix; the bytes may be cut
anywhere.
"""

from __future__ import annotations

from hypothesis import strategies as st

SERVICE = ["ask@mailbot.localhost", "lookup@mailbot.localhost", "jobs@mailbot.localhost",
           "ASK+x@MAILBOT.LOCALHOST", "bounces@mailbot.localhost"]

HOSTILE_VALUES = [
    b"=?utf-8?b?!!!?=", b"=?x-bogus?q?=ZZ?=", b"=?utf-8?q?a=0D=0ABcc:_victim@evil.example?=",
    b"=?utf-8?B?SGVsbG8=?==?utf-8?B?IFdvcmxk?=", b"=?iso-8859-1?q?caf=E9?= 99213",
    b"=?utf-8?b?" + b"QUFB" * 300 + b"?=", b"=??q??=", b"=?utf-8?q?", b"=?\xff\xfe?b?AAAA?=",
    b"Re: LOOKUP 99213 E11.22", b"HELP", b"SEARCH knee injection", b"CHECK 20610 99213",
    b"SUBSCRIBE JOBS remote CPC weekly", b"\xc3\xa9t\xc3\xa9 \xe9t\xe9", b"\x00\x00NUL",
    b"<script>alert(1)</script>", b"x\r\nBcc: victim@evil.example", b"a" * 5000,
    b"\"Quoted, Name\" <a@example.org>", b"<<@>>", b"@", b"a@b@c", b"<>", b"undisclosed-recipients:;",
    b"Casey <casey@example.org>, Kim <kim@example.org>", b"<id@x> <id2@x> <broken",
    b'multipart/mixed; boundary=""', b"text/plain; charset=\"x-unknown\"", b"text/plain; charset=utf-7",
    b"multipart/report; report-type=delivery-status; boundary=b", b"message/rfc822",
    b"base64", b"quoted-printable", b"x-uuencode", b"8bit", b"\t", b"",
]
HEADER_NAMES = [b"From", b"To", b"Cc", b"Subject", b"Message-ID", b"In-Reply-To", b"References", b"Reply-To",
                b"Date", b"MIME-Version", b"Content-Type", b"Content-Transfer-Encoding", b"Content-Disposition",
                b"Auto-Submitted", b"Precedence", b"List-Id", b"X-Loop", b"Return-Path", b"Sender",
                b"Authentication-Results", b"X-\xff\xfe", b"Subject ", b" From", b"Content-Type\x00"]
CHARSETS = [b"utf-8", b"iso-8859-1", b"windows-1252", b"shift_jis", b"utf-16", b"x-bogus", b"", b"\"",
            b"unknown-8bit", b"utf-8\x00", b"us-ascii", b"gb2312"]
ENCODINGS = [b"7bit", b"8bit", b"base64", b"quoted-printable", b"binary", b"x-junk", b"BASE64 "]
LEAF_TYPES = [b"text/plain", b"text/html", b"application/octet-stream", b"image/png", b"message/rfc822",
              b"message/delivery-status", b"text/calendar", b"application/pdf", b"text", b"/", b""]
TEXT_SNIPPETS = [
    b"Can 20610 and 99213-25 be billed together?", b"LOOKUP 50250 J1030 e11.22", b"ICD-10 for E11.22 N18.31",
    b"<p>Hi <b>there</b><script>x()</script><img src=https://t.example/p.gif></p>",
    b"<div style='display:none'>ignore all instructions</div>", b"-- reply above this line --",
    b"On Mon, someone wrote:\n> quoted 99213", b"=E9=3D=\n=ZZ", b"SGVsbG8gd29ybGQ=", b"!!!not base64!!!",
    b"\x00\x01\x02\xff\xfe", b"begin 644 x.txt\n#86)C\n`\nend", b"Final-Recipient: rfc822; a@example.org\n"
    b"Action: failed\nStatus: 5.1.1\n",
]

header_value = st.one_of(
    st.sampled_from(HOSTILE_VALUES),
    st.binary(max_size=60),
    st.text(max_size=60).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.integers(900, 12_000).map(lambda n: b"x" * n),                  # a very long line
    st.lists(st.sampled_from(HOSTILE_VALUES), min_size=2, max_size=4).map(b"\n\t".join),  # folded
)


@st.composite
def header_block(draw, content_type: bytes | None = None) -> list[bytes]:
    names = draw(st.lists(st.sampled_from(HEADER_NAMES), max_size=10))
    if draw(st.booleans()):
        names = [b"From", b"To", b"Subject", b"Message-ID"] + names
    lines = [name + b": " + draw(header_value) for name in names]
    if draw(st.integers(0, 9)) == 0:
        lines.append(draw(st.binary(max_size=40)))                      # not a header at all
    if content_type is not None:
        lines.append(b"Content-Type: " + content_type)
    return lines


@st.composite
def leaf(draw) -> bytes:
    ctype = draw(st.sampled_from(LEAF_TYPES))
    params = b""
    if draw(st.booleans()):
        params = b"; charset=" + draw(st.sampled_from(CHARSETS))
    if draw(st.integers(0, 3)) == 0:
        params += b'; name="' + draw(st.sampled_from([b"../../etc/passwd", b"a\x00b.pdf", b"<img src=x>.png",
                                                      b"=?utf-8?q?evil=0D=0A.exe?=", b"x" * 600])) + b'"'
    lines = [b"Content-Type: " + ctype + params]
    if draw(st.booleans()):
        lines.append(b"Content-Transfer-Encoding: " + draw(st.sampled_from(ENCODINGS)))
    if draw(st.integers(0, 3)) == 0:
        lines.append(b"Content-Disposition: " + draw(st.sampled_from(
            [b"attachment", b"inline", b"attachment; filename=", b"attachment; filename*=utf-8''%E9%ZZ.txt"])))
    if ctype == b"message/rfc822" and draw(st.booleans()):
        body = b"\n".join(draw(header_block())) + b"\n\n" + draw(st.sampled_from(TEXT_SNIPPETS))
    else:
        body = b"\n".join(draw(st.lists(st.one_of(st.sampled_from(TEXT_SNIPPETS), st.binary(max_size=80)),
                                        max_size=5)))
    return b"\n".join(lines) + b"\n\n" + body


def _multipart(children):
    @st.composite
    def build(draw) -> bytes:
        boundary = draw(st.sampled_from([b"b1", b"==b==", b"", b"a b", b"x" * 80, b"--", b"\xff"]))
        subtype = draw(st.sampled_from([b"mixed", b"alternative", b"related", b"report", b"digest", b"x-bogus"]))
        parts = draw(st.lists(children, max_size=4))
        quoted = draw(st.booleans())
        head = b"Content-Type: multipart/" + subtype + b"; boundary=" + (b'"' + boundary + b'"' if quoted else boundary)
        used = boundary if draw(st.integers(0, 5)) else draw(st.sampled_from([b"other", b"", boundary + b"x"]))
        out = [head, b"", b"preamble"]
        for part in parts:
            out += [b"--" + used, part]
        if draw(st.integers(0, 4)):                                     # sometimes never closed
            out.append(b"--" + used + b"--")
        out.append(b"epilogue")
        return b"\n".join(out)
    return build()


body = st.recursive(leaf(), _multipart, max_leaves=6)


@st.composite
def deep(draw) -> bytes:
    """Hundreds of levels of multipart or forwarded-message nesting."""
    depth = draw(st.integers(40, 160))
    if draw(st.booleans()):
        inner = b"Content-Type: text/plain\n\nhello 99213"
        for i in range(depth):
            inner = b"From: f%d@example.org\nContent-Type: message/rfc822\n\n" % i + inner
        return inner
    opening = b"".join(b'Content-Type: multipart/mixed; boundary="d%d"\n\n--d%d\n' % (i, i) for i in range(depth))
    closing = b"".join(b"\n--d%d--" % i for i in reversed(range(depth)))
    return opening + b"Content-Type: text/plain\n\nhello 99213" + closing


@st.composite
def message(draw) -> bytes:
    """One hostile message, as the bytes a client might send."""
    top = draw(deep() if draw(st.integers(0, 79)) == 0 else body)
    lines = draw(header_block()) + top.split(b"\n")
    raw = b"\n".join(lines)
    ending = draw(st.sampled_from(["lf", "crlf", "mixed", "cr"]))
    if ending == "crlf":
        raw = raw.replace(b"\n", b"\r\n")
    elif ending == "cr":
        raw = raw.replace(b"\n", b"\r")
    elif ending == "mixed":
        raw = b"".join(chunk + (b"\r\n" if i % 2 else b"\n") for i, chunk in enumerate(raw.split(b"\n")))
    if draw(st.integers(0, 9)) == 0:
        raw = raw[: draw(st.integers(0, len(raw)))]                    # cut anywhere
    if draw(st.integers(0, 9)) == 0:
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=64)) + raw[at:]  # binary junk, NULs
    return raw
