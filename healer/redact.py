"""One redaction for everything that leaves Healer: the model prompt, the PR body, the ledger, the pages.

Data samples, logs, error messages and commit messages are written by people and systems we
do not control. Before any of it leaves the process, values that look like credentials or
personal data are replaced by a tag naming what was removed (``[REDACTED:<KIND>]``), values
of columns whose names say they hold secrets are masked whole, and text bound for the model
is wrapped in a fence the system prompt tells the model to treat as data, never as
instructions.

- ``redact(text)``: secret shapes in free text (keys, tokens, headers, assignments, URLs).
- ``redact_row(row)``: one data row; columns named like secrets are masked whole.
- ``redact_json(value)``: any JSON-like record (outcomes, verdicts, evidence, API answers):
  strings redacted, values under secret-named keys or of secret-named columns masked.
- ``fence(source, text)`` / ``fence_rows``: redacted, fence markers neutralised, fenced.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

# -- which names say "secret" --------------------------------------------------------------

# Words that make a name secret wherever they stand (db_password, token_hash, aws_secret...).
_SECRET_WORDS = {"password", "passwd", "pwd", "passphrase", "secret", "secrets", "token", "credential",
                 "credentials", "creds", "ssn", "apikey", "privatekey", "secretkey", "accesskey", "clientsecret"}
# A word that ends a name like these (dbpassword, ghtoken) is secret too; "tokens" is not: a count.
_SECRET_ENDINGS = ("password", "passwd", "secret", "token", "credential", "credentials", "apikey")
# Words that are secret only as the last word (auth, http_auth), not in auth_method or cookie_name.
_SECRET_LAST_WORDS = {"auth", "cookie", "sessionid", "signature"}
# "key" is secret after one of these (api_key, AccessKey, private_key_id); order_key, key_id are not.
_KEY_QUALIFIERS = {"api", "access", "secret", "private", "signing", "encryption", "master", "auth", "client",
                   "account", "storage", "shared", "subscription", "service", "license", "ssh", "session", "app",
                   "consumer", "webhook", "sas", "hmac", "pgp", "gpg", "crypto", "deploy", "admin"}
# Env-style upper-case names: any of these substrings is enough (DBPASSWORD, GHTOKEN, MY_CREDENTIAL).
_ENV_SUBSTRINGS = ("SECRET", "TOKEN", "PASSWORD", "PASSWD", "CREDENTIAL")

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def _words(name: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(name)]


def is_secret_name(name: str) -> bool:
    """Does this column, key or variable name say it holds a secret?

    ``password``, ``api_token``, ``AWS_SECRET_ACCESS_KEY``, ``apiKey``, ``ssn`` do; ``key_id``,
    ``o_orderkey``, ``input_tokens`` and ``monkey`` do not.
    """
    words = _words(str(name or ""))
    if not words:
        return False
    if any(w in _SECRET_WORDS or w.endswith(_SECRET_ENDINGS) for w in words):
        return True
    if words[-1] in _SECRET_LAST_WORDS:
        return True
    if any(a == "social" and b == "security" for a, b in zip(words, words[1:])):
        return True
    for i, w in enumerate(words):
        if w in ("key", "keys") and i > 0 and words[i - 1] in _KEY_QUALIFIERS:
            return True
        if w.endswith("key") and w[:-3] in _KEY_QUALIFIERS:  # apikey, AccessKey as one word
            return True
    return False


def is_secret_env_name(name: str) -> bool:
    """An upper-case variable name, as in ``NAME=value``: any SECRET/TOKEN/PASSWORD/PASSWD/CREDENTIAL
    in it, or a KEY word (``STRIPE_KEY``), says secret; ``O_ORDERKEY`` still does not."""
    if not name.isupper():
        return False
    return any(s in name for s in _ENV_SUBSTRINGS) or bool({"key", "keys"} & set(_words(name))) or is_secret_name(name)


# -- secret shapes in free text --------------------------------------------------------------

_L = r"(?<![A-Za-z0-9])"  # a token may touch '_' or '-' (key_AKIA..., x-ghp_...), not a letter or digit
_R = r"(?![A-Za-z0-9])"

# A schema string names types after a colon (struct<password:string>): a type is not a value.
_TYPE_NAME = re.compile(r"(?i)(?:string|varchar|char|int|integer|bigint|long|short|smallint|tinyint|byte|double|"
                        r"float|real|boolean|bool|date|timestamp(?:_ntz|_ltz)?|binary|bytes|void|str|decimal|"
                        r"array|map|struct|interval)(?:[<(].*)?")
_EMPTY_VALUES = {"", "null", "none", "nil", "undefined", "true", "false", "***", "<redacted>"}

_ASSIGNMENT = re.compile(
    # a name with a telling word in it (so `https:` or `sort=` never swallow what follows); the
    # callback decides whether it really says secret
    r"(?<![\w.])(?=[\w.-]*(?i:pass|pwd|secret|token|key|cred|ssn|auth|cookie|session|signature|social))"
    r"(?P<name>[A-Za-z_][\w.-]*)(?=[\"']?\s*(?:=>|:=|[:=]))"
    r"(?P<sep>[\"']?\s*(?:=>|:=|[:=])\s*)"
    r"(?!\[REDACTED:)(?P<value>\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'|[^\s'\",;&<>(){}\[\]]+)")


def _assignment(m: re.Match) -> str:
    """``name = value`` with the value redacted when the name says secret (and the value is one)."""
    name, sep, value = m.group("name"), m.group("sep"), m.group("value")
    env = "=" in sep and is_secret_env_name(name)
    if not (env or is_secret_name(name)) or re.fullmatch(r"(?i)(proxy-)?authorization", name):
        return m.group(0)
    bare = value[1:-1] if value[:1] in "\"'" and len(value) > 1 else value
    if bare.lower() in _EMPTY_VALUES or bare.startswith("[REDACTED:") or (":" in sep and _TYPE_NAME.fullmatch(bare)):
        return m.group(0)
    quote = value[0] if value[:1] in "\"'" else ""
    return f"{name}{sep}{quote}[REDACTED:SECRET]{quote}"


def _luhn(m: re.Match) -> str:
    """A card number passes the Luhn check; most other long numbers (epoch millis, ids) do not."""
    digits = [int(c) for c in m.group(0) if c.isdigit()]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(reversed(digits)))
    return "[REDACTED:CARD]" if total % 10 == 0 else m.group(0)


_AWS_SECRET_CONTEXT = re.compile(r"(?i)aws|secret|access.?key")


def _aws_secret(text: str) -> Callable[[re.Match], str]:
    """A bare 40-character AWS secret key: mixed case and digits, and 'aws'/'secret' shortly before it."""
    def sub(m: re.Match) -> str:
        value = m.group(0)
        mixed = re.search(r"[a-z]", value) and re.search(r"[A-Z]", value) and re.search(r"\d", value)
        near = _AWS_SECRET_CONTEXT.search(text, max(0, m.start() - 80), m.start())
        return "[REDACTED:AWS_SECRET_KEY]" if mixed and near and value.count("/") <= 3 else value
    return sub


_AUTH_SCHEMES = "bearer|basic|token|digest|negotiate|ntlm|apikey|sso-key|aws4-hmac-sha256"

# (kind, pattern, replacement) in the order applied: whole blocks and headers first, then
# provider shapes, then names that say secret, then personal data.
_Rule = tuple[str, re.Pattern, Any]
RULES: list[_Rule] = [
    ("PRIVATE_KEY", re.compile(r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----[\s\S]*?"
                               r"(?:-----END[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|\Z)"), None),
    ("AUTH", re.compile(r"(?i)\b((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)"
                        rf"(?:({_AUTH_SCHEMES})\s+)?(?!\[REDACTED:|(?:{_AUTH_SCHEMES})\s+\[REDACTED:)[^\s\"']+"),
     lambda m: f"{m.group(1)}{m.group(2) + ' ' if m.group(2) else ''}[REDACTED:AUTH]"),
    ("AUTH", re.compile(r"(?i)\b(bearer\s+)(?=[A-Za-z._~+/-]*\d)[A-Za-z0-9._~+/-]{16,}=*"),
     lambda m: f"{m.group(1)}[REDACTED:AUTH]"),
    ("URL_PASSWORD", re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@'\"<>]*:)(?!\[REDACTED:)[^\s'\"<>/]+@"
                                r"(?=[^\s'\"<>@/]+)"),
     lambda m: f"{m.group(1)}[REDACTED:URL_PASSWORD]@"),
    ("SLACK_WEBHOOK", re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]+"), None),
    ("AWS_KEY", re.compile(_L + r"(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[A-Z0-9]{16}" + _R),
     None),
    ("ANTHROPIC_KEY", re.compile(_L + r"sk-ant-[A-Za-z0-9_-]{20,}"), None),
    ("OPENAI_KEY", re.compile(_L + r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"), None),
    ("GITHUB_TOKEN", re.compile(_L + r"(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{30,})"), None),
    ("GITLAB_TOKEN", re.compile(_L + r"(?:gl(?:pat|dt|rt|ptt|ft|imt|oas|cbt|soat|ffct|agent)-[A-Za-z0-9_-]{20,}|"
                                r"GR1348941[A-Za-z0-9_-]{20,})"), None),
    ("SLACK_TOKEN", re.compile(_L + r"(?:xox[abposre]-[A-Za-z0-9-]{10,}|xapp-\d-[A-Za-z0-9-]{10,})"), None),
    ("GOOGLE_KEY", re.compile(_L + r"(?:AIza[0-9A-Za-z_-]{35}|ya29\.[0-9A-Za-z_-]{20,}|GOCSPX-[A-Za-z0-9_-]{20,}|"
                              r"1//0[0-9A-Za-z_-]{30,})"), None),
    ("AZURE_SECRET", re.compile(r"(?<![\w~.-])[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34}(?![\w~.-])"), None),
    ("AZURE_SAS", re.compile(r"(?i)([?&;]sig=)[A-Za-z0-9%+/=]{16,}"), lambda m: f"{m.group(1)}[REDACTED:AZURE_SAS]"),
    ("API_KEY", re.compile(_L + r"(?:[rs]k_(?:live|test)_[A-Za-z0-9]{16,}|hf_[A-Za-z0-9]{30,}|npm_[A-Za-z0-9]{36}|"
                           r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{20,}|SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}|"
                           r"dapi[0-9a-f]{32}(?:-\d+)?)"), None),
    ("JWT", re.compile(_L + r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), None),
    ("SECRET", _ASSIGNMENT, _assignment),
    ("AWS_SECRET_KEY", re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"), _aws_secret),
    ("EMAIL", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"), None),
    ("CARD", re.compile(r"\b(?:\d[ -]?){12,18}\d\b"), _luhn),
    ("PHONE", re.compile(r"(?<![\w.])\+?\d{1,3}?[\s.-]?\(?\d{2,4}\)?[\s.-]\d{3,4}[\s.-]\d{3,4}(?![\w.])"), None),
]


def redact(text: str) -> str:
    """The text with every secret-looking or personal value replaced by ``[REDACTED:<KIND>]``.

    Idempotent: a redacted text comes back unchanged.
    """
    if not text or not isinstance(text, str):
        return text
    for kind, pattern, replacement in RULES:
        if replacement is None:
            text = pattern.sub(f"[REDACTED:{kind}]", text)
        elif replacement is _aws_secret:
            text = pattern.sub(_aws_secret(text), text)
        else:
            text = pattern.sub(replacement, text)
    return text


# -- secrets in records ------------------------------------------------------------------------

MASK = "[REDACTED:SECRET_COLUMN]"


def mask(value: Any) -> Any:
    """A value of a secret column: gone whole, whatever it looks like. NULL and booleans carry no secret."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, dict):
        return {k: mask(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask(v) for v in value]
    return MASK


def mask_values(column: str | None, values: list) -> list:
    """Example values of one column: masked whole when the column is named like a secret, else redacted."""
    if column is not None and is_secret_name(column):
        return [mask(v) for v in values]
    return [redact_value(v) for v in values]


def mask_if_secret(names: str | list[str] | None, values: list) -> list:
    """Values taken from data, masked whole when any of the names they come from (a column, the
    identifiers of an expression) says secret, else unchanged: for where example values are made."""
    names = [names] if isinstance(names, str) else list(names or [])
    if any(is_secret_name(n) for name in names for n in re.findall(r"\w+", str(name))):
        return [mask(v) for v in values]
    return list(values)


def redact_value(value: Any) -> Any:
    """Redact inside nested values (structs as dicts, arrays as lists) of sample data."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return redact_row(value)
    if isinstance(value, (list, tuple)):
        return [redact_value(v) for v in value]
    return value


def redact_row(row: dict) -> dict:
    """One data row: a column (or struct field) named like a secret is masked whole, the rest redacted."""
    return {k: mask(v) if is_secret_name(str(k)) else redact_value(v) for k, v in row.items()}


# Fields of a per-column record that hold the column's values (profiles, expectation results,
# probes, the sandbox's before/after rows); its type, counts and null fractions stay.
_VALUE_FIELD = re.compile(r"(?:min|max|sum|mean|avg|median|mode|top|first|last|examples?|values?|samples?|observed|"
                          r"partial_unexpected_list|unexpected_list|unexpected_values)(?:_.*)?")
_COLUMN_FIELDS = ("column", "operand")
_PROFILE_FIELDS = ("type", "null_fraction", "distinct")


def redact_json(value: Any) -> Any:
    """A JSON-like record with its secrets gone: every string redacted; under a key named like a
    secret, the value masked; in a per-column record of a secret column, the value fields masked."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (list, tuple)):
        return [redact_json(v) for v in value]
    if not isinstance(value, dict):
        return value
    secret_column = any(isinstance(value.get(k), str) and is_secret_name(value[k]) for k in _COLUMN_FIELDS)
    out = {}
    for key, item in value.items():
        if secret_column and _VALUE_FIELD.fullmatch(str(key)):
            out[key] = mask(item)
        elif is_secret_name(str(key)):
            out[key] = _mask_under_secret_key(item)
        else:
            out[key] = redact_json(item)
    return out


def _mask_under_secret_key(item: Any) -> Any:
    """What a secret-named key holds: a profile keeps its type and counts, a type name stays, all else goes."""
    if isinstance(item, dict) and any(k in item for k in _PROFILE_FIELDS):
        return {k: mask(v) if _VALUE_FIELD.fullmatch(str(k)) else redact_json(v) for k, v in item.items()}
    if isinstance(item, str) and _TYPE_NAME.fullmatch(item):
        return item  # a schema's {"password": "string"}: the type is not the secret
    if isinstance(item, (list, tuple)) and all(isinstance(v, str) and _TYPE_NAME.fullmatch(v) for v in item):
        return list(item)  # {"retyped": {"password": ["string", "int"]}}
    return mask(item)


# -- fences for the model ------------------------------------------------------------------------

_FENCE_MARKER = re.compile(r"(?i)<(\s*/?\s*untrusted[\s_-]*data)")


def neutralise_fences(text: str) -> str:
    """Fence markers inside data, in any case and spacing, opening or closing, lose their ``<``."""
    return _FENCE_MARKER.sub(r"&lt;\1", text)


def fence(source: str, text: str) -> str:
    """Untrusted text, redacted, inside a fence the model is told never to obey.

    Fence markers inside the text are neutralised, so data can neither end the fence early
    nor open a fake one.
    """
    body = neutralise_fences(redact(str(text)))
    label = re.sub(r"[^\w .:/-]", "_", neutralise_fences(redact(str(source))))[:120]
    return f'<untrusted-data source="{label}">\n{body}\n</untrusted-data>'


def fence_rows(source: str, rows: list[dict]) -> str:
    """Sample rows, one JSON object a line: secret columns masked, the rest redacted, all fenced."""
    return fence(source, "\n".join(json.dumps(redact_row(r) if isinstance(r, dict) else redact_value(r), default=str)
                                   for r in rows))
