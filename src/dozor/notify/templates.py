"""Message texts per event, in English and Polish, short enough for one SMS where possible.

Texts are plain strings with ``{placeholders}``; the subject doubles as the SMS text, so a
down alert fits one GSM-7 part for ordinary monitor names::

    >>> render("down", "en", monitor="api", reason="HTTP 503", at="14:02 CET").subject
    'DOWN: api (HTTP 503) since 14:02 CET'
    >>> render("up", "pl", monitor="api", duration="5 min", at="14:07 CET").subject
    'DZIAŁA: api, po 5 min, od 14:07 CET'

Polish texts use Polish letters, which makes an SMS UCS-2 (70 characters a part); the
subjects are kept short for that reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LANGUAGES = ("en", "pl")

TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    # event: language: (subject, body)
    "down": {
        "en": ("DOWN: {monitor} ({reason}) since {at}",
               "Monitor {monitor} is down since {at}.\nReason: {reason}"),
        "pl": ("AWARIA: {monitor} ({reason}) od {at}",
               "Monitor {monitor} nie działa od {at}.\nPrzyczyna: {reason}"),
    },
    "expiry": {
        "en": ("EXPIRING: {monitor} ({reason})", "Monitor {monitor}: {reason}"),
        "pl": ("WYGASA: {monitor} ({reason})", "Monitor {monitor}: {reason}"),
    },
    "up": {
        "en": ("UP: {monitor} after {duration}, since {at}",
               "Monitor {monitor} is up again since {at}, after {duration} down."),
        "pl": ("DZIAŁA: {monitor}, po {duration}, od {at}",
               "Monitor {monitor} znów działa od {at}, po {duration} awarii."),
    },
    "verification": {
        "en": ("Dozor code: {code}",
               "Your Dozor confirmation code is {code}. Enter it to receive alerts for "
               "{org} here. Reply STOP to opt out."),
        "pl": ("Kod Dozor: {code}",
               "Twój kod potwierdzenia Dozor to {code}. Wpisz go, by otrzymywać tu alerty "
               "{org}. Odpowiedz STOP, by zrezygnować."),
    },
    "digest": {
        "en": ("{count} alerts: {summary}", "{lines}"),
        "pl": ("{count} alertów: {summary}", "{lines}"),
    },
    "point_failing": {
        "en": ("Dozor cannot reach {point}",
               "Messages to {point} of {contact} fail: {reason}. Check the address."),
        "pl": ("Dozor nie dociera do {point}",
               "Wiadomości do {point} ({contact}) nie dochodzą: {reason}. Sprawdź adres."),
    },
    "suspended": {
        "en": ("Dozor messaging suspended",
               "Messaging for {org} is suspended: {reason}. Alerts are not sent."),
        "pl": ("Wysyłka Dozor wstrzymana",
               "Wysyłka wiadomości dla {org} wstrzymana: {reason}. Alerty nie są wysyłane."),
    },
    # A personal-data breach (``privacy.breach``): ``summary`` is the operator's text.
    "breach_notice": {
        "en": ("Dozor: a personal data breach affecting {org}",
               "We found a breach of personal data held for {org} on {detected} (UTC).\n\n"
               "{summary}\n\nReply to this message or write to the operator of this "
               "Dozor installation with any question."),
        "pl": ("Dozor: naruszenie ochrony danych osobowych w {org}",
               "Wykryliśmy naruszenie ochrony danych osobowych przechowywanych dla {org} "
               "({detected} UTC).\n\n{summary}\n\nZ pytaniami odpowiedz na tę wiadomość "
               "lub napisz do operatora tej instalacji Dozor."),
    },
    # Account emails (``account_mail``): ``link`` is a URL and a newline, or empty.
    "password_reset": {
        "en": ("Reset your Dozor password",
               "Someone asked to reset the password of the Dozor account {email}. To choose "
               "a new password, use this token within {minutes} minutes:\n{token}\n{link}"
               "If it was not you, ignore this message: your password stays as it is."),
        "pl": ("Zmiana hasła w Dozor",
               "Ktoś poprosił o zmianę hasła konta Dozor {email}. Aby ustawić nowe hasło, "
               "użyj tego kodu w ciągu {minutes} minut:\n{token}\n{link}"
               "Jeśli to nie Ty, zignoruj tę wiadomość: hasło się nie zmieni."),
    },
    "invitation": {
        "en": ("{inviter} invited you to {org} on Dozor",
               "{inviter} invited you to join {org} on Dozor as {role}. To accept, choose "
               "a password with this token within {days} days:\n{token}\n{link}"
               "If you do not know {inviter}, ignore this message."),
        "pl": ("{inviter} zaprasza Cię do {org} w Dozor",
               "{inviter} zaprasza Cię do {org} w Dozor (rola: {role}). Aby przyjąć "
               "zaproszenie, ustaw hasło tym kodem w ciągu {days} dni:\n{token}\n{link}"
               "Jeśli nie znasz {inviter}, zignoruj tę wiadomość."),
    },
    "member_added": {
        "en": ("You were added to {org} on Dozor",
               "{inviter} added you to {org} on Dozor as {role}. Log in with your password "
               "and choose {org} to work in it."),
        "pl": ("Dodano Cię do {org} w Dozor",
               "{inviter} dodaje Cię do {org} w Dozor (rola: {role}). Zaloguj się swoim "
               "hasłem i wybierz {org}."),
    },
    # Status page subscribers (``subscriber_mail``): ``unsubscribe`` is a URL.
    "status_confirm": {
        "en": ("Confirm your subscription to {page}",
               "Someone asked to receive updates of the status page {page} at this "
               "address. To confirm, open this link within {days} days and press the "
               "button:\n{link}\nIf it was not you, ignore this message: nothing will be "
               "sent."),
        "pl": ("Potwierdź subskrypcję: {page}",
               "Ktoś poprosił o wiadomości ze strony statusu {page} na ten adres. Aby "
               "potwierdzić, otwórz ten link w ciągu {days} dni i naciśnij przycisk:\n"
               "{link}\nJeśli to nie Ty, zignoruj tę wiadomość: nic nie zostanie wysłane."),
    },
    "status_note": {
        "en": ("{page}: {status}",
               "{text}\n\n{status} · {page}\n{page_link}\n\nUnsubscribe: {unsubscribe}"),
        "pl": ("{page}: {status}",
               "{text}\n\n{status} · {page}\n{page_link}\n\nRezygnacja: {unsubscribe}"),
    },
    # Operator notices (``operator_mail``, ``probe_watch``): times are UTC; ``after`` is
    # DOZOR_PROBE_SILENT_AFTER; ``last`` a time, or NEVER_HEARD.
    "probe_silent": {
        "en": ("Dozor probe {probe} ({location}) is silent",
               "The probe {probe} at {location} has not reached this server for more "
               "than {after}. Last contact: {last}.\n\nWhile it is silent, {location} "
               "counts as unknown for the monitors it checks: their other locations "
               "judge them, and a monitor checked from {location} alone goes unwatched.\n"
               "Check that `dozor probe` runs there and can reach this server. You will "
               "get one message when it is back."),
        "pl": ("Sonda Dozor {probe} ({location}) milczy",
               "Sonda {probe} w lokalizacji {location} nie łączy się z tym serwerem od "
               "ponad {after}. Ostatni kontakt: {last}.\n\nDopóki milczy, {location} "
               "liczy się jako nieznana dla monitorów, które sprawdza: oceniają je ich "
               "pozostałe lokalizacje, a monitor sprawdzany tylko z {location} nie jest "
               "pilnowany.\nSprawdź, czy `dozor probe` tam działa i dociera do tego "
               "serwera. Gdy wróci, dostaniesz jedną wiadomość."),
    },
    "probe_back": {
        "en": ("Dozor probe {probe} ({location}) is back",
               "The probe {probe} at {location} reached this server again at {at}, "
               "after a silence since {since}."),
        "pl": ("Sonda Dozor {probe} ({location}) wróciła",
               "Sonda {probe} w lokalizacji {location} znów połączyła się z tym serwerem "
               "o {at}; milczała od {since}."),
    },
}

# A silent probe's last contact when it never made one.
NEVER_HEARD = {"en": "never (added {added})", "pl": "nigdy (dodana {added})"}

# How a note's status reads in a subscriber's mail.
NOTE_WORDS = {
    "en": {"investigating": "investigating", "identified": "identified",
           "monitoring": "monitoring", "resolved": "resolved",
           "maintenance": "maintenance", "info": "information"},
    "pl": {"investigating": "badamy", "identified": "znamy przyczynę",
           "monitoring": "obserwujemy", "resolved": "rozwiązane",
           "maintenance": "prace serwisowe", "info": "informacja"},
}

# What a contact agrees to when confirming a point: kept in the consent ledger verbatim.
CONSENT_TEXT = {
    "en": "I agree to receive monitoring alerts from {org} at {address}. "
          "I can opt out at any time (reply STOP, unsubscribe link, or /stop).",
    "pl": "Zgadzam się na otrzymywanie alertów monitoringu od {org} na {address}. "
          "Mogę zrezygnować w każdej chwili (odpowiedź STOP, link rezygnacji lub /stop).",
}

STATE_WORDS = {"en": {"down": "down", "up": "up", "expiry": "expiring"},
               "pl": {"down": "awaria", "up": "działa", "expiry": "wygasa"}}


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    body: str


def language_of(language: str) -> str:
    """A supported language for a contact's preference (English when we lack theirs)."""
    return language if language in LANGUAGES else "en"


def render(event: str, language: str, **values: Any) -> Rendered:
    subject, body = TEXTS[event][language_of(language)]
    return Rendered(subject.format(**values), body.format(**values))


def render_digest(language: str, items: list[tuple[str, str]]) -> Rendered:
    """One message for several: ``items`` are (event, subject) pairs, oldest first.

    >>> render_digest("en", [("down", "DOWN: a"), ("down", "DOWN: b"), ("up", "UP: a")])
    Rendered(subject='3 alerts: 2 down, 1 up', body='DOWN: a\\nDOWN: b\\nUP: a')
    """
    language = language_of(language)
    counts: dict[str, int] = {}
    for event, _ in items:
        counts[event] = counts.get(event, 0) + 1
    words = STATE_WORDS[language]
    summary = ", ".join(f"{n} {words.get(event, event)}" for event, n in counts.items())
    lines = "\n".join(subject for _, subject in items)
    return render("digest", language, count=len(items), summary=summary, lines=lines)


def consent_text(language: str, org: str, address: str) -> str:
    return CONSENT_TEXT[language_of(language)].format(org=org, address=address)
