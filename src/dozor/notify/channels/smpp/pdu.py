"""SMPP 3.4 PDUs: framing, the few PDUs an ESME sends, and what the status codes mean.

``submit_sm`` and ``deliver_sm`` (many fields, optional TLVs) are encoded and decoded by the
``smpp34`` codec; the PDUs that are a header and a few C-strings (binds, enquire_link,
unbind, responses, generic_nack) are written here, as the codec has no Python class for
them. Every PDU is a 16-byte header (length, command id, status, sequence) and a body::

    >>> header_only(ENQUIRE_LINK, 7).hex()
    '00000010000000150000000000000007'
    >>> status_name(0x58)
    'ESME_RTHROTTLED'
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass

import smpp34

GENERIC_NACK = 0x80000000
BIND_TRANSCEIVER = 0x00000009
BIND_TRANSCEIVER_RESP = 0x80000009
SUBMIT_SM = 0x00000004
SUBMIT_SM_RESP = 0x80000004
DELIVER_SM = 0x00000005
DELIVER_SM_RESP = 0x80000005
UNBIND = 0x00000006
UNBIND_RESP = 0x80000006
ENQUIRE_LINK = 0x00000015
ENQUIRE_LINK_RESP = 0x80000015
ALERT_NOTIFICATION = 0x00000102  # the one request that takes no response
RESPONSE_BIT = 0x80000000

HEADER = struct.Struct(">IIII")
MAX_PDU = 64 * 1024  # a message_payload TLV is at most 64 KiB; anything longer is garbage
MAX_SEQUENCE = 0x7FFFFFFF

STATUS_NAMES = {
    0x00: "ESME_ROK", 0x01: "ESME_RINVMSGLEN", 0x02: "ESME_RINVCMDLEN",
    0x03: "ESME_RINVCMDID", 0x04: "ESME_RINVBNDSTS", 0x05: "ESME_RALYBND",
    0x06: "ESME_RINVPRTFLG", 0x07: "ESME_RINVREGDLVFLG", 0x08: "ESME_RSYSERR",
    0x0A: "ESME_RINVSRCADR", 0x0B: "ESME_RINVDSTADR", 0x0C: "ESME_RINVMSGID",
    0x0D: "ESME_RBINDFAIL", 0x0E: "ESME_RINVPASWD", 0x0F: "ESME_RINVSYSID",
    0x14: "ESME_RMSGQFUL", 0x15: "ESME_RINVSERTYP", 0x33: "ESME_RINVNUMDESTS",
    0x43: "ESME_RINVESMCLASS", 0x45: "ESME_RSUBMITFAIL", 0x48: "ESME_RINVSRCTON",
    0x49: "ESME_RINVSRCNPI", 0x50: "ESME_RINVDSTTON", 0x51: "ESME_RINVDSTNPI",
    0x53: "ESME_RINVSYSTYP", 0x58: "ESME_RTHROTTLED", 0x61: "ESME_RINVSCHED",
    0x62: "ESME_RINVEXPIRY", 0x63: "ESME_RINVDFTMSGID", 0x64: "ESME_RX_T_APPN",
    0x65: "ESME_RX_P_APPN", 0x66: "ESME_RX_R_APPN", 0xC0: "ESME_RINVOPTPARSTREAM",
    0xC1: "ESME_ROPTPARNOTALLWD", 0xC2: "ESME_RINVPARLEN", 0xC3: "ESME_RMISSINGOPTPARAM",
    0xC4: "ESME_RINVOPTPARAMVAL", 0xFE: "ESME_RDELIVERYFAILURE", 0xFF: "ESME_RUNKNOWNERR",
}
ROK = 0x00
RSYSERR = 0x08
RINVCMDID = 0x03
RX_T_APPN = 0x64  # "try again later": our answer to a deliver_sm we could not store
RX_P_APPN = 0x65  # "never": our answer to a deliver_sm we cannot make sense of


def status_name(status: int) -> str:
    """The spec's name of a command_status, or its hex value (vendor codes 0x400-0x4FF)."""
    return STATUS_NAMES.get(status, f"0x{status:08X}")


class PduError(Exception):
    """The peer sent bytes that are not SMPP."""


@dataclass(frozen=True, slots=True)
class Pdu:
    command_id: int
    status: int
    sequence: int
    raw: bytes  # the whole PDU, header included, as the codec wants it

    @property
    def body(self) -> bytes:
        return self.raw[HEADER.size:]


async def read_pdu(reader: asyncio.StreamReader) -> Pdu:
    """The next PDU on the stream; IncompleteReadError at the end of it."""
    head = await reader.readexactly(HEADER.size)
    length, command_id, status, sequence = HEADER.unpack(head)
    if not HEADER.size <= length <= MAX_PDU:
        # A length-prefixed stream cannot find its feet again after a bad length.
        raise PduError(f"a PDU of {length} bytes")
    body = await reader.readexactly(length - HEADER.size)
    return Pdu(command_id, status, sequence, head + body)


def header_only(command_id: int, sequence: int, status: int = ROK) -> bytes:
    return HEADER.pack(HEADER.size, command_id, status, sequence)


def with_body(command_id: int, sequence: int, body: bytes, status: int = ROK) -> bytes:
    return HEADER.pack(HEADER.size + len(body), command_id, status, sequence) + body


def c_string(value: str) -> bytes:
    return value.encode("ascii") + b"\0"


def read_c_string(body: bytes, offset: int = 0) -> str:
    """A NUL-terminated field of a body; lenient about a missing NUL at the very end."""
    end = body.find(b"\0", offset)
    return body[offset:len(body) if end < 0 else end].decode("latin-1")


def bind_transceiver(sequence: int, *, system_id: str, password: str, system_type: str,
                     addr_ton: int = 0, addr_npi: int = 0, address_range: str = "") -> bytes:
    body = (c_string(system_id) + c_string(password) + c_string(system_type)
            + bytes((0x34, addr_ton, addr_npi)) + c_string(address_range))
    return with_body(BIND_TRANSCEIVER, sequence, body)


@dataclass(frozen=True, slots=True)
class Submit:
    """One part of a message, as one submit_sm."""

    source_addr: str
    source_ton: int
    source_npi: int
    destination_addr: str  # digits of an international number, without "+"
    short_message: bytes
    data_coding: int
    esm_class: int = 0
    registered_delivery: int = 0
    service_type: str = ""

    def encode(self, sequence: int) -> bytes:
        pdu = smpp34.SubmitSm(
            self.source_addr, self.destination_addr, self.short_message,
            service_type=self.service_type, source_addr_ton=self.source_ton,
            source_addr_npi=self.source_npi, dest_addr_ton=1, dest_addr_npi=1,
            esm_class=self.esm_class, registered_delivery=self.registered_delivery,
            data_coding=self.data_coding, sequence_number=sequence,
        )
        return pdu.encode()


def decode_deliver_sm(pdu: Pdu) -> smpp34.DeliverSm:
    """The fields of a deliver_sm; PduError if the codec cannot read it."""
    try:
        decoded = smpp34.decode(pdu.raw)
    except smpp34.SmppError as error:
        raise PduError(f"unreadable deliver_sm: {error}") from None
    if not isinstance(decoded, smpp34.DeliverSm):
        raise PduError("not a deliver_sm")
    return decoded
