"""What counts as evidence (R6): a few kinds of file, small enough to keep, that are wholly what they say.

The limits live here so that the API, the CLI and the ledger refuse the same files with the same sentence.
Support opens these files, so a declared type is checked, not trusted, and checked whole: an image must
decode completely (Pillow), a PDF must parse and have a page and run nothing when opened (pypdf), and a text
file must be UTF-8 that does not start as markup. A file's first bytes alone prove nothing: `%PDF-` followed
by HTML, or a PNG signature followed by an SVG script, would pass a look at them. A file's name is reduced to
a base name safe to save under, with the extension of its checked type.
The bytes themselves never enter a workflow: the ledger stores them and the workflow keeps `EvidenceRef`s.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

from PIL import Image, ImageSequence
from pydantic import Field, model_validator
from pypdf import PdfReader
from pypdf.generic import DictionaryObject

from policy import refusals
from policy.models import Frozen
from policy.refusals import PolicyRefusal

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_TOTAL_BYTES = 10 * 1024 * 1024
MAX_FILES = 5

MAX_PIXELS = 25_000_000
"""The most pixels an image may decode to, its frames together (a 6K screen is 20 million). A few kilobytes
of PNG can declare gigapixels of one colour (a decompression bomb): the count is checked from the header,
before a single pixel is decoded."""

Check = Callable[[bytes], str | None]
"""The test a file's bytes must pass: None if they are wholly the declared type, else why they are not."""


def _image(kind: str) -> Check:
    """Pillow's test for images of `kind` ("PNG", "JPEG", "GIF", "WEBP"): opened as that format only,
    verified (PNG's checksums), then re-opened and every frame decoded to its last pixel."""

    def check(data: bytes) -> str | None:
        too_many = f"it decodes to more than {MAX_PIXELS:,} pixels, the most an image may have"
        try:
            with Image.open(io.BytesIO(data), formats=[kind]) as image:
                if image.width * image.height * getattr(image, "n_frames", 1) > MAX_PIXELS:
                    return too_many
                image.verify()
            with Image.open(io.BytesIO(data), formats=[kind]) as image:
                for frame in ImageSequence.Iterator(image):
                    frame.load()
        except Image.DecompressionBombError:  # Pillow's own bound, far above ours, refused at opening
            return too_many
        except Exception:  # Pillow reports a broken file as OSError, SyntaxError, ValueError, EOFError...
            return f"it does not decode as a whole {kind} image"
        return None

    return check


ACTIVE_ACTIONS = frozenset({"/JavaScript", "/Launch", "/ImportData", "/SubmitForm"})
"""PDF actions that run code, start a program or send data out, rather than move within the document."""


def _pdf(data: bytes) -> str | None:
    """pypdf's test: the file parses, is not encrypted (so it can be inspected and read), has a page, and
    runs nothing (`_runs_something`)."""
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            return "it is encrypted, so nobody at the shop could read it"
        if len(reader.pages) == 0:
            return "it has no page"
        active = _runs_something(reader)
    except Exception:  # pypdf reports a broken file as PdfReadError, ValueError, KeyError, RecursionError...
        return "it does not parse as a PDF"
    return None if active is None else f"it carries {active}, which a document sent as evidence may not"


def _runs_something(reader: PdfReader) -> str | None:
    """What in the document would act on its own when support opens it: document JavaScript, embedded
    files, an action run on opening, or actions triggered by the document, a page or an annotation."""
    catalog = reader.root_object
    names = _resolved(catalog.get("/Names"))
    if isinstance(names, DictionaryObject):
        if "/JavaScript" in names:
            return "document JavaScript"
        if "/EmbeddedFiles" in names:
            return "embedded files"
    if "/AA" in catalog:
        return "actions that run on their own"
    if _is_active(catalog.get("/OpenAction")):
        return "an action that runs when it is opened"
    for page in reader.pages:
        if "/AA" in page:
            return "actions that run on their own"
        annotations = _resolved(page.get("/Annots"))
        for annotation in annotations if isinstance(annotations, list) else []:
            annotation = _resolved(annotation)
            if not isinstance(annotation, DictionaryObject):
                continue
            if annotation.get("/Subtype") == "/FileAttachment":
                return "embedded files"
            if "/AA" in annotation or _is_active(annotation.get("/A")):
                return "a link that runs something"
    return None


def _is_active(action: Any, depth: int = 0) -> bool:
    """Whether an action dictionary, or one chained after it with `/Next`, runs code, starts a program or
    sends data (a destination such as "open at page 1, fit to width" is an array, and runs nothing)."""
    action = _resolved(action)
    if not isinstance(action, DictionaryObject) or depth > 16:
        return False
    if action.get("/S") in ACTIVE_ACTIONS or "/JS" in action:
        return True
    chained = _resolved(action.get("/Next"))
    return any(_is_active(item, depth + 1) for item in (chained if isinstance(chained, list) else [chained]))


def _resolved(value: Any) -> Any:
    """A PDF object, with an indirect reference to it followed."""
    return value.get_object() if value is not None else None


MARKUP = re.compile(r"<(?:!doctype|\?xml|!--|/?[a-z][a-z0-9:._-]*(?:[\s/>]|$))", re.IGNORECASE)
"""How an HTML, XML or SVG document begins: a doctype, an XML declaration, a comment or a tag."""


def _text(data: bytes) -> str | None:
    """A text file is UTF-8 without NUL bytes (else it is a binary in disguise), and does not start as markup:
    a browser or an editor would treat `<html>` or `<svg onload=...>` as a page, whatever it was called."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "it is not UTF-8 text"
    if "\x00" in text:
        return "it holds NUL bytes, so it is not text"
    start = 0
    while start < len(text) and (text[start].isspace() or unicodedata.category(text[start]) == "Cf"):
        start += 1  # whitespace, a byte order mark, zero-width characters
    if MARKUP.match(text, start):
        return "it starts as markup (an HTML, XML or SVG document), which is not plain text"
    return None


ACCEPTED_TYPES: dict[str, Check] = {
    "image/png": _image("PNG"),
    "image/jpeg": _image("JPEG"),
    "image/gif": _image("GIF"),
    "image/webp": _image("WEBP"),
    "application/pdf": _pdf,
    "text/plain": _text,
}
"""Screenshots, documents and logs, each with the test its bytes must pass: a declared type is checked, not
trusted, because support opens these files."""

EXTENSIONS: dict[str, tuple[str, ...]] = {
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    "image/gif": (".gif",),
    "image/webp": (".webp",),
    "application/pdf": (".pdf",),
    "text/plain": (".txt", ".log"),
}
"""The file name endings of each accepted type, the first one the one added to a name without any."""

UNSAFE_IN_NAMES = frozenset('<>:"|?*')
"""Characters Windows refuses in a file name (`:` would also name a drive or an alternate data stream)."""


def safe_name(name: str, content_type: str) -> str:
    """The name to keep and show for an attachment: the base name of what the client sent (no directory, no
    `..`), without control, format or bidi characters (`invoice\u202efdp.exe` would show `invoiceexe.pdf`),
    Windows' reserved characters as `_`, and ending as its checked type does (`evil.html` sent as a PNG is
    kept as `evil.html.png`), so that whoever saves it saves what was checked. What is left of the name is
    kept as the client wrote it."""
    base = re.split(r"[/\\]", name)[-1]
    visible = "".join(_kept_char(char) for char in base)
    kept = " ".join(visible.split()).strip(" .") or "attachment"
    endings = EXTENSIONS.get(content_type, ())
    if endings and not kept.lower().endswith(endings):
        kept = kept[: 255 - len(endings[0])].rstrip(" .") + endings[0]
    return kept[:255]


def _kept_char(char: str) -> str:
    """A character of a file name as `safe_name` keeps it: whitespace as a space, Windows' reserved
    characters as `_`, controls, format characters, surrogates, private use and unassigned not at all."""
    if char.isspace():
        return " "
    if char in UNSAFE_IN_NAMES:
        return "_"
    return "" if unicodedata.category(char) in {"Cc", "Cf", "Cs", "Co", "Cn"} else char


class EvidenceFile(Frozen):
    """An attachment as a customer sends it, before the ledger stores it, under its `safe_name`."""

    name: str = Field(min_length=1, max_length=255)
    content_type: str = Field(min_length=1, max_length=100)
    data: bytes = Field(min_length=1, max_length=MAX_FILE_BYTES)

    @model_validator(mode="before")
    @classmethod
    def _safe_name(cls, values: Any) -> Any:
        if isinstance(values, dict) and isinstance(values.get("name"), str):
            return {**values, "name": safe_name(values["name"], str(values.get("content_type", "")))}
        return values

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def check_evidence(files: Sequence[EvidenceFile]) -> None:
    """Raise `PolicyRefusal(evidence_rejected)` for too many, too large or mistyped files, saying why."""
    if len(files) > MAX_FILES:
        raise _rejected(f"at most {MAX_FILES} files may be attached")
    if sum(len(f.data) for f in files) > MAX_TOTAL_BYTES:
        raise _rejected(f"the attachments may weigh {MAX_TOTAL_BYTES // (1024 * 1024)} MiB together")
    for file in files:
        check = ACCEPTED_TYPES.get(file.content_type)
        if check is None:
            accepted = ", ".join(ACCEPTED_TYPES)
            raise _rejected(f"{file.name}: {file.content_type} is not accepted; send one of {accepted}")
        why = check(file.data)
        if why is not None:
            raise _rejected(f"{file.name}: the file's content is not {file.content_type}: {why}")


def _rejected(message: str) -> PolicyRefusal:
    return PolicyRefusal(refusals.EVIDENCE_REJECTED, message)
