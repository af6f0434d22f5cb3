"""Texts on SMPP: GSM 03.38 and UCS-2, concatenated parts, inbound texts, delivery receipts.

A text in the GSM alphabet goes as ``data_coding`` 0 (the SMSC's default alphabet), one
unpacked septet per octet, extension characters escaped with 0x1B; anything else goes as
UCS-2 (``data_coding`` 8, UTF-16BE). A text longer than one SMS is split into parts that each
start with a user data header (``esm_class`` 0x40): ``05 00 03 ref total seq``, so 153 GSM
septets or 67 UCS-2 units a part, the same arithmetic as :mod:`dozor.notify.sms_parts`.
UDH rather than SAR TLVs because every SMSC and handset knows UDH. A part never ends between
an escape and its character, nor between the halves of a surrogate pair::

    >>> encoded = encode_text("x" * 161, reference=7)
    >>> encoded.data_coding, encoded.esm_class, [len(p) for p in encoded.parts]
    (0, 64, [159, 14])
    >>> encoded.parts[1][:6].hex()
    '050003070202'
    >>> encode_text("Serwer nie działa", reference=0).parts[0][:12].decode("utf-16-be")
    'Serwer'
    >>> decode_text(0, encode_text("{ok} €5", reference=0).parts[0])
    '{ok} €5'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import smpp34

from dozor.notify.sms_parts import gsm7_septets

GSM7 = ("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
        "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENSION = {0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\", 0x3C: "[",
                  0x3D: "~", 0x3E: "]", 0x40: "|", 0x65: "€"}
ESCAPE = 0x1B
_GSM7_CODES = {char: bytes((code,)) for code, char in enumerate(GSM7) if code != ESCAPE}
_GSM7_CODES.update({char: bytes((ESCAPE, code)) for code, char in GSM7_EXTENSION.items()})

DC_DEFAULT, DC_IA5, DC_LATIN1, DC_UCS2 = 0x00, 0x01, 0x03, 0x08
ESM_UDHI = 0x40
# Octets of one part, and of a concatenated part once its 6-octet UDH is in (GSM-7 unpacked:
# one septet an octet, so 160/153; UCS-2: 70/67 units of two octets).
SINGLE_OCTETS = {DC_DEFAULT: 160, DC_UCS2: 140}
PART_OCTETS = {DC_DEFAULT: 153, DC_UCS2: 134}
MAX_PARTS = 255


@dataclass(frozen=True, slots=True)
class EncodedText:
    data_coding: int
    esm_class: int
    parts: list[bytes]  # each a short_message, UDH included


def encode_text(text: str, reference: int) -> EncodedText:
    """The short_messages of a text; ``reference`` (0-255) ties the parts together.

    Raises ValueError for a text longer than 255 parts."""
    if gsm7_septets(text) is not None:
        data_coding, pieces = DC_DEFAULT, [_GSM7_CODES[char] for char in text]
    else:
        data_coding, pieces = DC_UCS2, [char.encode("utf-16-be") for char in text]
    if sum(len(piece) for piece in pieces) <= SINGLE_OCTETS[data_coding]:
        return EncodedText(data_coding, 0, [b"".join(pieces)])
    chunks = _chunks(pieces, PART_OCTETS[data_coding])
    if len(chunks) > MAX_PARTS:
        raise ValueError(f"a text of {len(chunks)} SMS parts (at most {MAX_PARTS})")
    total = len(chunks)
    parts = [bytes((5, 0, 3, reference & 0xFF, total, seq)) + chunk
             for seq, chunk in enumerate(chunks, start=1)]
    return EncodedText(data_coding, ESM_UDHI, parts)


def _chunks(pieces: list[bytes], capacity: int) -> list[bytes]:
    chunks: list[bytes] = []
    current = b""
    for piece in pieces:
        if len(current) + len(piece) > capacity:
            chunks.append(current)
            current = b""
        current += piece
    chunks.append(current)
    return chunks


def decode_text(data_coding: int, payload: bytes) -> str:
    """An inbound text. Data coding 0 is whatever the SMSC calls its default: GSM-7 unpacked
    as the spec says, but octets above 0x7F can only be Latin-1, which some SMSCs send."""
    if data_coding == DC_UCS2:
        return payload.decode("utf-16-be", errors="replace")
    if data_coding in (DC_DEFAULT, 0xF0) and all(octet < 0x80 for octet in payload):
        return _decode_gsm7(payload)
    if data_coding == DC_IA5:
        return payload.decode("ascii", errors="replace")
    return payload.decode("latin-1")


def _decode_gsm7(payload: bytes) -> str:
    chars: list[str] = []
    escaped = False
    for octet in payload:
        if escaped:
            chars.append(GSM7_EXTENSION.get(octet, " "))
            escaped = False
        elif octet == ESCAPE:
            escaped = True
        else:
            chars.append(GSM7[octet])
    return "".join(chars)


def strip_udh(esm_class: int, payload: bytes) -> bytes:
    """The text of a short_message that may start with a user data header."""
    if esm_class & ESM_UDHI and payload:
        return payload[1 + payload[0]:]
    return payload


# Receipts: esm_class bits 2-5 say "SMSC delivery receipt" (0x04) or "intermediate
# notification" (0x20); the text follows SMPP 3.4 appendix B, "id:... stat:... err:...".
ESM_TYPE_MASK = 0x3C
RECEIPT_TYPES = (0x04, 0x20)
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427
TLV_NETWORK_ERROR_CODE = 0x0423
TLV_MESSAGE_PAYLOAD = 0x0424

Outcome = Literal["delivered", "failed", "accepted"]
STATES: dict[str, Outcome] = {
    "DELIVRD": "delivered", "ACCEPTD": "accepted", "ENROUTE": "accepted",
    "EXPIRED": "failed", "DELETED": "failed", "UNDELIV": "failed", "REJECTD": "failed",
    "UNKNOWN": "failed",
}
# The message_state TLV's values, named as in the receipt text.
STATE_CODES = {1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV",
               6: "ACCEPTD", 7: "UNKNOWN", 8: "REJECTD"}
_ID = re.compile(r"\bid:(\S+)", re.IGNORECASE)
_STAT = re.compile(r"\bstat:(\w+)", re.IGNORECASE)
_ERR = re.compile(r"\berr:(\w+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ReceiptFields:
    message_id: str
    outcome: Outcome
    detail: str  # "stat:UNDELIV err:001", the SMSC's own words


def is_receipt(deliver: smpp34.DeliverSm) -> bool:
    return (deliver.esm_class & ESM_TYPE_MASK in RECEIPT_TYPES
            or _tlv(deliver, TLV_RECEIPTED_MESSAGE_ID) is not None)


def parse_receipt(deliver: smpp34.DeliverSm) -> ReceiptFields | None:
    """What a delivery receipt says, TLVs first (they are exact), else its text; None if
    it names no message."""
    text = deliver.short_message.decode("latin-1")
    id_tlv = _tlv(deliver, TLV_RECEIPTED_MESSAGE_ID)
    message_id = id_tlv.as_string() if id_tlv is not None else _first(_ID, text)
    state_tlv = _tlv(deliver, TLV_MESSAGE_STATE)
    code = state_tlv.as_int() if state_tlv is not None else None
    stat = STATE_CODES.get(code, "UNKNOWN") if code is not None else _first(_STAT, text)
    if not message_id or not stat:
        return None
    stat = stat.upper()
    detail = f"stat:{stat}"
    error = _first(_ERR, text) or _network_error(deliver)
    if error:
        detail += f" err:{error}"
    return ReceiptFields(message_id.strip(), STATES.get(stat, "failed"), detail)


def inbound_text(deliver: smpp34.DeliverSm) -> str:
    payload = deliver.short_message
    payload_tlv = _tlv(deliver, TLV_MESSAGE_PAYLOAD)
    if not payload and payload_tlv is not None:
        payload = payload_tlv.value
    return decode_text(deliver.data_coding, strip_udh(deliver.esm_class, payload))


def _tlv(deliver: smpp34.DeliverSm, tag: int) -> smpp34.Tlv | None:
    return next((tlv for tlv in deliver.tlvs if tlv.tag == tag), None)


def _first(pattern: re.Pattern[str], text: str) -> str | None:
    match = pattern.search(text)
    return match.group(1) if match else None


def _network_error(deliver: smpp34.DeliverSm) -> str | None:
    tlv = _tlv(deliver, TLV_NETWORK_ERROR_CODE)
    return tlv.value.hex() if tlv is not None else None
