"""What a producer's message asks for: one typed :class:`Request` (an intent and its arguments).

Two readers agree on a message here:

* **the grammar** reads what words say exactly: the stems named (one matcher,
  :func:`faderwise.advisor.stem_names.mentions`, shared with the tools and the command line), the
  producer's own dB amounts and their direction, "except" and "only" lists, "top 3", paths, a
  DAW, an advisor; and it proposes the intents whose cue words a message holds (:data:`CUES`);
* **the examples** (:mod:`faderwise.agent.semantic`) vote by meaning for paraphrases the cues miss.

A cue the examples agree with wins; a lone cue wins; with no cue the examples decide when they
are sure (:data:`SURE`), and when two intents are close the request is asked back (``clarify``),
never acted on. What neither reads is ``unknown``, answered with the closest things faderwise can do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from faderwise.advisor.registry import advisor_names
from faderwise.advisor.stem_names import Mention, mentions, missing_instruments
from faderwise.agent.semantic import ExampleMatcher, Vote

INTENTS = ("overview", "which", "ranking", "can_stay", "overall", "mix_level", "stem", "why", "how_much", "measure",
           "compare", "what_if", "own_move", "apply", "forget", "undo", "group", "judge", "plot", "bundle", "export",
           "push", "undo_push", "advisor", "list", "load", "reference", "help", "greeting", "thanks", "scope",
           "clarify", "unknown")
"""Every intent a request can have (the labels of the request set; :mod:`faderwise.agent.planner` answers each)."""

SURE = 0.55
"""The nearest example's cosine similarity above which the examples alone decide an intent."""
CLOSE = 0.15
"""Two intents whose vote shares differ by less than this are too close to pick: the request is asked back."""


@dataclass(frozen=True)
class Request:
    """One message, read.

    Attributes:
        intent: one of :data:`INTENTS`.
        stems: the stems it is about (session names, in the order said); for ``apply``/``forget``
            the only ones to act on (empty: all).
        db: the producer's own amount in dB (signed: + raise; ``None``: none said).
        except_stems: ``apply``/``forget``: the stems to leave out.
        n: ``ranking``: how many (``None``: all).
        detail: ``which``: loud/quiet/off; ``mix_level``: loudness/peak/headroom/clipping; ``plot``:
            levels/loudness; ``push``/``undo_push``: the DAW; ``advisor``: its name; ``load``/``reference``: the path.
        parts: (phrase, stem) for each part word that named a stem ("kick" → drums), said back in the reply.
        missing: instrument words no stem of the session holds ("strings").
        alternatives: ``clarify``/``unknown``: the intents it is closest to, closest first.
        how: what decided the intent: "command", "cue", "examples", "cue+examples" or "none".
    """

    intent: str
    stems: tuple[str, ...] = ()
    db: float | None = None
    except_stems: tuple[str, ...] = ()
    n: int | None = None
    detail: str | None = None
    parts: tuple[tuple[str, str], ...] = ()
    missing: tuple[str, ...] = ()
    alternatives: tuple[str, ...] = ()
    how: str = "cue"
    ports: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["ports"] = dict(self.ports)
        return payload

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> Request:
        def strings(key: str) -> tuple[str, ...]:
            return tuple(str(item) for item in payload.get(key) or ())
        return cls(intent=str(payload["intent"]), stems=strings("stems"),
                   db=None if payload.get("db") is None else float(payload["db"]),
                   except_stems=strings("except_stems"), n=payload.get("n"), detail=payload.get("detail"),
                   parts=tuple((str(a), str(b)) for a, b in payload.get("parts") or ()), missing=strings("missing"),
                   alternatives=strings("alternatives"), how=str(payload.get("how", "command")),
                   ports={str(k): int(v) for k, v in (payload.get("ports") or {}).items()})


# -- the grammar: amounts ----------------------------------------------------------------------------

NUMBER_WORDS = {"half a": 0.5, "half": 0.5, "a half": 0.5, "one": 1.0, "a single": 1.0, "two": 2.0, "a couple of": 2.0,
                "a couple": 2.0, "couple of": 2.0, "couple": 2.0, "three": 3.0, "four": 4.0, "five": 5.0, "six": 6.0,
                "seven": 7.0, "eight": 8.0, "nine": 9.0, "ten": 10.0, "one and a half": 1.5, "a": 1.0, "an": 1.0}
_WORD_NUMBER = "|".join(sorted((re.escape(w) for w in NUMBER_WORDS), key=len, reverse=True))
_NUMBER = rf"(?P<sign>[+\-−]|minus |plus |negative )?\s?(?P<value>\d+(?:[.,]\d+)?|{_WORD_NUMBER})"
_DIGITS = r"(?P<sign>[+\-−]|minus |plus |negative )?\s?(?P<value>\d+(?:[.,]\d+)?)"
_NOT_A_GAIN = r"(?!\s*(?:lufs|lu\b|hz|khz|k\b|ms\b|s\b|sec|seconds|bpm|dbfs|dbtp|%|bars?\b|min))"
"""A number followed by another unit is a level, a time or a frequency, not a fader move."""
_AMOUNT_DB = re.compile(rf"(?<![\w.]){_NUMBER}\s*(?:db|dbs|decibels?|decibel)\b")
_AMOUNT_BARE = re.compile(rf"\b(?:up|down|by|to|of|do|try|go with|make it|make that|maybe|just|only|around|about|for|"
                          rf"instead|cut|raise|lower|drop|boost|pull|push|bump|trim|take|knock|at)\s+(?:it\s+|them\s+|"
                          rf"that\s+)?(?:by\s+|to\s+|down\s+|up\s+)?(?:just\s+|only\s+|about\s+|around\s+)?{_DIGITS}"
                          rf"(?![\w.%]){_NOT_A_GAIN}")
_AMOUNT_WORDS = re.compile(rf"\b(?:up|down|by|to)\s+(?:just\s+|only\s+|about\s+)?{_NUMBER}(?![\w.%]){_NOT_A_GAIN}")
_AMOUNT_SIGN_WORD = re.compile(rf"\b(?:minus|plus|negative)\s+(?P<word>{_WORD_NUMBER}|\d+(?:[.,]\d+)?)\b")
_SIGNED_BARE = re.compile(rf"(?<![\w.])(?P<sign>[+\-−])(?P<value>\d+(?:[.,]\d+)?)(?![\w.%:]){_NOT_A_GAIN}")
_OLD_AMOUNT = re.compile(rf"\b(?:instead of|rather than|not|from|than)\s+(?:the\s+)?{_NUMBER}")
UP_WORDS = re.compile(r"\b(raise|raising|boost|boosting|louder|up|lift|lifting|push|pushing|bump|bumping|turn up|"
                      r"bring up|crank|increase|increasing|add|adding|more|higher|plus)\b")
DOWN_WORDS = re.compile(r"\b(lower|lowering|down|cut|cutting|drop|dropping|reduce|reducing|quieter|softer|pull|"
                        r"pulling|back off|tame|taming|trim|trimming|less|minus|knock|knocking|take off|decrease|"
                        r"tuck|tucking|attenuate|duck)\b")


def _value(match: re.Match[str]) -> float:
    raw = (match.groupdict().get("value") or match.group("word")).replace(",", ".")
    return NUMBER_WORDS[raw] if raw in NUMBER_WORDS else float(raw)


def amount(lowered: str) -> tuple[float | None, int | None]:
    """The producer's own amount (dB, unsigned) and its sign (+1, −1, or None when the words
    give no direction): "down 2 instead of 4" is 2 down; "make it -2" is −2; "a couple dB" is 2."""
    old = [m.span() for m in _OLD_AMOUNT.finditer(lowered)]
    def at(m: re.Match[str]) -> int:
        return m.start("value") if m.groupdict().get("value") is not None else m.start("word")
    found = [m for pattern in (_AMOUNT_DB, _AMOUNT_BARE, _AMOUNT_WORDS, _AMOUNT_SIGN_WORD, _SIGNED_BARE) for m in pattern.finditer(lowered)
             if not any(start <= at(m) < end for start, end in old)]
    found = [m for m in found if (m.groupdict().get("value") or m.group("word")) not in ("a", "an") or m.re is _AMOUNT_DB]
    if not found:
        return None, None
    chosen = min(found, key=at)
    value = _value(chosen)
    if value <= 0 or value > 24:
        return None, None
    sign = (chosen.groupdict().get("sign") or "").strip()
    if chosen.groupdict().get("word") is not None:
        sign = chosen.group(0).split()[0]
    if sign:
        return value, -1 if sign in ("-", "−", "minus", "negative") else 1
    before = lowered[:at(chosen)]
    ups = [m.start() for m in UP_WORDS.finditer(before)]
    downs = [m.start() for m in DOWN_WORDS.finditer(before)]
    if not ups and not downs:
        after = lowered[chosen.end():]
        ups, downs = [-m.start() for m in UP_WORDS.finditer(after)], [-m.start() for m in DOWN_WORDS.finditer(after)]
    if not ups and not downs:
        return value, None
    return value, 1 if max(ups, default=-10**6) > max(downs, default=-10**6) else -1


# -- the grammar: lists, counts, details ------------------------------------------------------------

_EXCEPT = re.compile(r"\b(?:except(?: for)?|but not|apart from|other than|besides|excluding|minus|save for|"
                     r"everything but|all but|not the|but leave|leave out|leaving out|without)\b")
_SKIP = re.compile(r"\b(?:skip|skipping|leave|leaving|ignore|not|don'?t|dont|forget|drop|nvm|never mind|exclude|ditch|"
                   r"scrap|bin|cancel|remove|without|minus|except|but)\b")
"""Words that, before a stem in its clause, leave it out of an apply ("never mind the drums, apply")."""
_KEEP = re.compile(r"\b(?:but|except|not|apart from|other than|save for)\b")
"""Words that, before a stem in its clause, keep its move out of a forget ("forget the drums but keep the
vocals"; "leave the vocals alone" and "keep the snare where it is" forget those stems' moves)."""
_REST = re.compile(r"\b(?:the rest|everything else|all the others|the others|all other \w+)\b")
_FORGET_VERBS = re.compile(r"\b(?:forget|drop|skip|ignore|scrap|cancel|discard|remove|ditch|bin|clear|reset|nvm|"
                           r"never mind)\b")
COUNT_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "couple": 2, "couple of": 2}
_COUNT = re.compile(r"\b(?:top|first|biggest|worst|main|largest)\s+(?P<a>\d|one|two|three|four|five|six|couple)\b|"
                    r"\b(?P<c>number one|one move|single (move|change|fix))\b|"
                    r"\b(?P<b>\d|two|three|four|five|six)\s+(?:biggest|worst|main|largest|most|top|stems|moves|"
                    r"problems|issues|changes|offenders|things)\b")


def count(lowered: str) -> int | None:
    """"top 3", "the two biggest": how many the producer wants (None: all)."""
    match = _COUNT.search(lowered)
    if not match:
        return None
    if match.group("c"):
        return 1
    word = match.group("a") or match.group("b")
    return int(word) if word.isdigit() else COUNT_WORDS[word]


def split_by_clause(lowered: str, found: Sequence[Mention], words: re.Pattern[str]) -> tuple[list[str], list[str]]:
    """The stems named (in order), split by whether one of ``words`` comes before a stem in its own
    part of the message (since the previous stem, or a comma, semicolon, "and" or "then")."""
    plain: list[str] = []
    marked: list[str] = []
    start = 0
    for mention in found:
        before = lowered[start:mention.start]
        cut = max((m.end() for m in re.finditer(r"[,;.]|\band\b|\bthen\b", before)), default=0)
        (marked if words.search(before[cut:]) else plain).append(mention.stem)
        start = mention.end
    return list(dict.fromkeys(plain)), list(dict.fromkeys(marked))


def split_except(lowered: str, found: Sequence[Mention]) -> tuple[list[str], list[str]]:
    """The stems named (in order) and those named after an "except" word ("all except the drums")."""
    cut = _EXCEPT.search(lowered)
    only = [m.stem for m in found if cut is None or m.start < cut.start()]
    left_out = [m.stem for m in found if cut is not None and m.start >= cut.start()]
    return list(dict.fromkeys(only)), list(dict.fromkeys(left_out))


PATH = r"""(?<!\w)["']([^"']+)["']|(\S*[/\\]\S*|\S+\.(?:mp4|wav|flac|rpp|RPP|ardour)|(?<!\S)\.\.?(?=[\s,;]|$))"""


def path_after(text: str, words: str) -> str | None:
    """The path a message gives after one of ``words`` ("load ~/song/stems", "reference 'B mix'")."""
    match = re.search(rf"\b(?:{words})\b(?:\s+(?:the|my|stems?|from|in|at|to|folder|as|project))*\s+(?:{PATH})",
                      text, re.IGNORECASE)
    if not match:
        return None
    path = (match.group(1) or match.group(2)).rstrip(",;")
    if not re.search(r"(?:^|[/\\])\.+$", path):  # a full stop ends the sentence, not a ".." component
        path = path.rstrip(".")
    return path


def path_in(text: str) -> str | None:
    """The first path a message gives ("load ~/song/stems", "ref: './B mix'"), or None."""
    for match in re.finditer(PATH, text):
        path = (match.group(1) or match.group(2)).rstrip(",;")
        if match.group(1) is None and not re.search(r"[/\\~]|\.(mp4|wav|flac|rpp|ardour)$", path, re.IGNORECASE) \
                and path not in (".", ".."):
            continue
        if not re.search(r"(?:^|[/\\])\.+$", path):  # a full stop ends the sentence, not a ".." component
            path = path.rstrip(".")
        if match.group(1) is None and (re.fullmatch(r"a/b|\+|/\w+|[a-z]+/[a-z]+", path, re.IGNORECASE)
                                       or "[/" in path):
            continue  # "A/B", a slash command's name, a name with a closing tag in it ("[bold]Vox[/bold]")
        return path
    return None


def advisor_named(lowered: str) -> str | None:
    """The advisor a message names (:mod:`faderwise.advisor.registry`; the longest name it holds, so
    "alm-pretrained" is not "alm"), or in words: "the audio-language model" is ``alm``, "without a
    reference" is ``single-mix``; ``None`` when it names none."""
    pretrained = re.search(r"pre-?trained", lowered) is not None
    for name in sorted(advisor_names(), key=len, reverse=True):
        spelled = "|".join(re.escape(form) for form in {name, name.replace("-", " ")})
        if re.search(rf"(?<![\w-])(?:{spelled})(?![\w-])", lowered):
            return "alm-pretrained" if name == "alm" and pretrained else name  # "the pretrained alm"
    if re.search(r"audio[- ]language", lowered):
        return "alm-pretrained" if pretrained else "alm"
    if re.search(r"\bwithout (the |a )?reference\b|\bno reference\b|\bjust my mix\b", lowered):
        return "single-mix"
    return None


LOUD_SIDE = re.compile(r"too (loud|high|hot|much|forward|upfront|up front|prominent|dominant)|loudest|poking|sticking|"
                       r"jumping|stands? out|on top|overpower|overwhelm|drown(s|ing)? (out )?(the|everything)|"
                       r"dominat|cutting through too|in your face|hot|harsh|louder than it should|over the top|"
                       r"eating|masking|swamp|(stick|poke|jump)s? out|too big|too much|squash|smother")
QUIET_SIDE = re.compile(r"too (quiet|soft|low|quietly|far back|small|weak)|quietest|buried|burying|lost|drown\w*|"
                        r"hiding|hidden|hidden|can'?t hear|cannot hear|hard to hear|barely hear|under|tucked|weak|thin in the "
                        r"mix|missing from|not coming through|fighting to be heard|sits? too low|getting lost|masked")


def side(lowered: str) -> str:
    """Which way "off" means in a "which stem" question: "loud", "quiet" or "off" (either)."""
    loud, quiet = LOUD_SIDE.search(lowered), QUIET_SIDE.search(lowered)
    if loud and not quiet:
        return "loud"
    if quiet and not loud:
        return "quiet"
    if loud and quiet:
        return "off" if re.search(r"\bor\b", lowered) else ("loud" if loud.start() < quiet.start() else "quiet")
    return "off"


def mix_detail(lowered: str) -> str:
    """What of the mix's own level a message asks: "headroom", "clipping", "peak" or "loudness"."""
    if re.search(r"headroom|room (left|before)|space (left|before)|how (close|near) to (0|zero)", lowered):
        return "headroom"
    if re.search(r"\bclip|\bovers?\b|distort|in the red|going red|redlin|over (0|zero)|above (0|zero)", lowered):
        return "clipping"
    if re.search(r"\bpeak|dbtp|true[- ]?peak|hottest", lowered):
        return "peak"
    return "loudness"


def plot_detail(lowered: str) -> str:
    return "loudness" if re.search(r"\btime\b|short[- ]term|\bcurves?\b|over the song|through the song|"
                                   r"\bmomentary\b|\btimeline\b", lowered) else "levels"


def daw_named(lowered: str) -> str | None:
    return "ardour" if re.search(r"\bardour\b", lowered) else "reaper" if re.search(r"\breaper\b", lowered) else None


# -- the grammar: cues --------------------------------------------------------------------------------

BEYOND_GAIN = (r"\b(eq|eqs|eq'?d|eqing|equali[sz]\w*|compress\w*|limit(er|ing)\w*|reverb\w*|verb|delay|echo|"
               r"chorus (effect|pedal|fx)|flanger|phaser|saturat\w*|distort(ed|ion)|overdrive|effects?|fx|plug-?ins?|pan|panned|panning|"
               r"stereo width|wid(e|er|en)\w*|side-?chain\w*|gat(e|ing)|de-?ess\w*|auto-?tune|pitch|arrang\w*|"
               r"high[- ]pass|low[- ]pass|hpf|lpf|filter\w*|transient\w*|(boost|cut) the (highs|lows|mids|treble)|"
               r"punch(y|ier|iness)?|bright(er|en|ness)?|dark(er|en)?|warm(er|th)?|presence|airy|more air|"
               r"mudd?(y|iness)|boom(y|iness)|crisp(er|ness)?|crack|snap(py|pier)?|thick(er|en)?|thin(ner)?|"
               r"harsh(ness)?|sibilan\w*|tone|tonal|timbre|tight(en|er)|fat(ter)?|crunch(y|ier)?|glue|"
               r"mono|stereo image|depth|spacious|room sound|mastering chain|master bus processing|master(ing)? (it|the (song|track|mix))|"
               r"for spotify|tune (the|my|it)|quantiz\w*|timing)\b")

CUES: tuple[tuple[str, str], ...] = (
    ("greeting", r"^\W*(hi|hey|hello|hiya|howdy|yo|sup|good (morning|afternoon|evening)|what'?s up|heya)\b[\s\w,!.']{0,20}$"),
    ("thanks", r"^\W*(thanks?|thank you|thx|ty|tysm|cheers|nice one|much appreciated|appreciate it|great,? thanks|"
               r"perfect,? thanks|awesome,? thanks|legend)\b[\s\w,!.']{0,25}$"),
    ("help", r"^\s*(\?|help|commands|menu|usage)\s*[?!.]*$|list (the |your )?commands|what can you do|what do you do|how do i use|what can i ask|"
             r"what are (your|the) (commands|options)|how does this work|^\s*help\s*(me)?\s*[?!.]*$"),
    ("undo_push", r"\b(undo|revert|roll ?back|restore)\b.*\b(push|reaper|ardour|daw)\b|\b(put|set) (the |my )?(daw |reaper |"
                  r"ardour )?faders back\b|\b(reaper|ardour|daw)\b.{0,30}\bback\b"),
    ("push", r"\b(push|send|move|sync|set|update|put|apply)\b.*\b(reaper|ardour|daw|osc)\b|^\W*push\W*$|"
             r"\b(reaper|ardour)\b.{0,20}\bfaders\b"),
    ("export", r"\bexport\b(?!.*\b(conversation|chat|transcript|markdown)\b)|\bwrite\b.*\b(reaper|ardour|project)\b|"
               r"\.rpp\b|\.ardour\b|\b(reaper|ardour) (project|session)( file)?\b|\bproject file\b"),
    ("judge", r"second opinion|double[- ]check|sanity[- ]check|how good is (this|that|the|your)|rate (the|your|this|that)|"
              r"grade (the|your|this|that)|score (the|your|this|that) advice|judge|trust (this|that|your|the) advice|"
              r"is (this|that|the) advice (any )?(good|right|correct|sound|solid)|critique (the|your|this) advice|"
              r"second pair of ears|review (the|your|this) (advice|suggestions|moves)|how reliable|how confident|"
              r"(advice|suggestions?|moves|recommendations?)\b.{0,25}\b(any good|legit|solid|trustworthy|right\?|correct)"),
    ("what_if", r"\b(what if|what happens if|what would happen|what'?d happen|if i|if we|if (the|my|you|u)|suppose|say i|imagine|"
                r"would it|would that|would (the|my) mix|hypothetically|what would .{0,40} do|would \w+ing\b|"
                r"would .{0,40}\bhelp)\b"),
    ("own_move", r"\b(only|just|instead|rather|make it|make that|go with|let'?s (do|go|try|make)|i'?ll (do|take|go)|"
                 r"change it to|set it to|i want|i'?d prefer|i'?d rather|settle|how about|not \d|do it at|"
                 r"change|set|swap|switch|replace|(take|bring|turn|pull|knock|push|bump|drop|cut|raise|lower|nudge|trim|boost)\b|"
                 r"(come|go|goes|comes|move|moves) (up|down)\b|\b(up|down) (by )?\d|louder by|quieter by)"),
    ("apply", r"\b(apply|aply|applying|go ahead|do it|commit|print (it|them|the)|make (the|those|these) (changes|moves)|"
              r"execute|run (the|those|these) moves|let'?s do (it|this|that)|go for it|make it so)\b|"
              r"\b(render|bounce) (it|them|this|that|those|these|the (moves|changes|mix|stems|rest)|everything|all)\b|"
              r"^\W*(ok |okay |yes |yeah |then |now |please |pls )*(render|bounce)\b"),
    ("forget", r"\b(forget|drop|skip|ignore|scrap|cancel|discard|remove|throw out|ditch|bin|nvm|never mind|clear|reset)\b|"
               r"\bleave\b.{0,30}\bwhere (it|they) (is|are)\b|"
               r"\b(don'?t|do not|never)\b.*\b(move|touch|change|apply)\b|\bleave\b.*\b(alone|be|out|as (is|it is|they are))\b|"
               r"\bkeep\b.*\b(as (is|it is|they are)|where (it|they) (is|are))\b"),
    ("undo", r"\b(undo|revert|roll ?back|go back|take (it|that|them) back|back to (the )?(original|before)|"
             r"put it back|restore the original|ctrl[- ]?z|cmd[- ]?z)\b"),
    ("mix_level", r"\bheadroom\b|\bclip(s|ping|ped)?\b|\bovers\b|in the red|going red|\btrue[- ]?peak|\bdbtp\b|"
                  r"how loud is (the |my |this )?(whole |entire |full |overall |final )?(mix|song|track|master|bounce|"
                  r"mixdown|thing)\b|(mix|master|song)('s)? (overall )?(loudness|lufs|level|peak)|"
                  r"(loudness|lufs|peak|level) of (the |my )?(whole |overall |entire )?(mix|master|song|mixdown)|"
                  r"(overall|integrated|total) (loudness|lufs)|\bpeaking at\b|how hot is (the|my) (mix|master)|"
                  r"\b(mix|master|mixdown|bounce)\b.{0,25}\b(lufs|peak|loud|hot|distort\w*)|"
                  r"\b(lufs|peak|loudness|distort\w*)\b.{0,25}\b(mix|master)\b"),
    ("overall", r"(louder|quieter|hotter|softer|lower|higher|loud|quiet|level[- ]match\w*|match(es|ed)?|level|gain)"
                r"\b.{0,40}\b(than|compared (to|with)|vs\.?|versus|against|as|to|with) (the |my )?(ref|reference|"
                r"version b|b|balanced (mix|version)|target)\b|\boverall\b.{0,30}\b(louder|quieter|level)|"
                r"\b(louder|quieter) overall\b|\bmaster (level|fader)\b|level[- ]?match\w*|"
                r"\b(ref|reference|version b)\b.{0,30}\b(louder|quieter|hotter|softer)\b|"
                r"\b(low|quiet|loud|hot|soft|level|volume)\w*\b.{0,40}\b(compared|relative) (to|with) (the )?(ref|reference|b)\b"),
    ("ranking", r"\b(rank|ranking|order|sort|prioriti[sz]e)\b|\blist\b.{0,40}\b(by|from|worst|biggest)\b|\bin order\b|"
                r"\b(\d|two|three|four|five) most important\b|\bnumber one\b|\btop couple\b|\b(fixes|moves) first\b|"
                r"\b(rank|ranking|order|sort)\b.{0,40}\b(stems?|tracks?|moves?|by|from|problems?|"
                r"issues?|offenders?)\b|\btop \d|\btop (one|two|three|four|five)\b|\b(\d|two|three|four|five) "
                r"(biggest|worst|main|largest)\b|\b(biggest|worst|main|largest) (\d|two|three|four|five)\b|"
                r"worst to best|most to least|from worst|biggest (problems|issues|offenders|moves)|"
                r"how far off is (each|every)|each stem.{0,30}how far"),
    ("can_stay", r"can stay|stay (as|where|put)|(are|is|sound|sit)s? (fine|ok|okay|good|right|balanced) (as|already)|"
                 r"fine as (is|it is|they are)|(don'?t|doesn'?t|do not) need (to be )?(touch|moved?|chang|adjust|fix)|"
                 r"already (good|fine|right|balanced|sitting|there)|which (ones|stems|tracks|parts) are (fine|ok|okay|good|"
                 r"right|alright)|(no|not) (need|needing) (a )?(change|move)s?|leave (as is|untouched)|"
                 r"which can i leave|what can i leave|what'?s (fine|ok|good|right)|nothing to do on|"
                 r"what (don'?t|do not) i need to (touch|change|move)|are (fine|good|ok)$|wouldn'?t (move|touch|change)|"
                 r"close enough|basically there|(don'?t|do not|doesn'?t|dont|doesnt) (have|need) (to|a) (change|move|touch)|"
                 r"not mess with|(leave|keep) alone\b|can i leave|can be left|balanced ok"),
    ("group", r"\btogether\b|\bcombined\b|\bas a (group|unit|whole|bus)\b|\bas one\b|\bsummed\b|\bsum of\b|"
              r"\brhythm section\b|\bthe band\b|\binstrumental\b|\bbacking track\b|\bmusic bed\b|\bthe beat and\b|"
              r"\b(everything|all) (but|except|apart from|other than|besides)\b|\bminus the (vox|vocals?)\b|"
              r"\bbus\b|\bthe music\b|\bthe instruments\b|\bthe track without\b|\bgroup\b|\bsum\b|\bplus the\b|"
              r"\b\w+ \+ \w+\b"),
    ("mastering", r"\bmaster(ing)? (it|this|the (song|track|mix))\b|\bfor (spotify|streaming|apple music|youtube)\b"),
    ("scope", BEYOND_GAIN),
    ("undo_plain", r"^\s*undo\s*[.!]*$"),
    ("why", r"\bwhy\b|\bexplain\b|\breasons?\b|\bevidence\b|how do you know|what makes you (think|say)|"
            r"what('s| is) (that|this) based on|based on what|how come|where('s| is| does) (that|this) (come|coming) from|"
            r"show me (the )?(proof|numbers|data)|what'?s the reasoning|justify"),
    ("how_much", r"\bhow much\b|\bexactly\b|\bprecisely\b|\bhow many (db|dbs|decibels)\b|\bby how much\b|"
                 r"what('s| is) the (exact )?(number|amount)|\bhow far\b|\bexact\b"),
    ("plot", r"\b(plot|graph|chart|draw|visuali[sz]e|diagram|picture)\b|over time\b|\bcurves?\b|short[- ]term"),
    ("bundle", r"\bbundles?\b|\ba/?b (clips?|files?|audio|pack)\b|\bclips for\b"),
    ("list", r"^\s*(list|stems)\b|\b(list|show)\b.*\b(stems|tracks)\b|\bwhat stems\b|\bstems\b.*\b(loaded|have|got)\b|"
             r"what('s| is| have you got) loaded|what tracks (do|have)|which (stems|tracks) do (you|i) have|^\W*ls\W*$|"
             r"working with|what (files|tracks|stems) (did|do|have) (you|i)"),
    ("advisor", r"\bsingle[- ]mix\b|\bequal[- ]loudness\b|\bwithout (the |a )?reference\b|\bmeasured advisor\b|"
                r"\balm\b|\balm-[a-z-]+\b|\baudio[- ]language\b|\b(switch|change|use|try) (the |an?o?t?h?e?r? )?"
                r"(advisor|model)\b|\bmeasured (one|advisor)\b"),
    ("which", r"\btoo (loud|quiet|soft|low|high|hot|quietly)\b|\bfurthest\b|\bworst\b|\bmost off\b|\bloudest\b|"
              r"\bquietest\b|\b(which|what)\b.*\b(stems?|tracks?|instruments?|parts?|ones?|faders?|elements?)\b.*"
              r"\b(off|wrong|loud|quiet|soft|buried|most|needs?|biggest|change)\b|poking|sticking out|jumping out|"
              r"\bburied\b|\bdrown\w*|\bcan'?t hear\b|\bbarely hear\b|\bhard to hear\b|\bstands? out\b|\bsticks? out\b|"
              r"\bpokes? out\b|\bhiding\b|\bsquash\w*|\bsmother\w*|\bmost wrong\b|"
              r"\bon top\b|\boverpower\w*|\blost in\b|\bgetting lost\b|\bwhat'?s (off|loud|quiet|too)"),
    ("measure", r"\bhow loud\b|\bmea?sure\w*\b|\bwhat level\b|\bsitting at\b|\blufs\b|\bpeaks?\b|\bloudness\b|\bcrest\b|\brms\b|"
                r"\bmeter\w*\b|\bhow hot\b|\b(each|every|all|per) (stem|track)'?s? (level|loudness)|\blevels? (of|on|for) (each|every|all)"),
    ("compare", r"\bcompare\b|\bcomparison\b|\bversus\b|\bvs\b|\bside[- ]by[- ]side\b|\bdifferences?\b|"
                r"\bagainst the reference\b|\bdid (that|it|this) (work|fix|help)\b|\bcheck (it|again|now)\b|"
                r"\bhow('s| is| does) it (look|compare|sound) now\b|\bafter (applying|the changes|the render)\b|\bstack up\b|"
                r"\bcloser to the ref"),
    ("overview", r"\boverview\b|what'?s wrong|\bhow('s| is| does) (my|the|this) (mix|song|balance|track)\b|\bbalanc|"
                 r"\badvi[cs]e\b|\bsuggest|\bfix\b|\banaly[sz]e\b|\bfaders?\b|\bmoves?\b|\bcheck\b|\bsummary\b|"
                 r"\bwhat should i\b|\bimprove\b|\bfeedback\b|\bthoughts\b|\bcritique\b|\btweaks?\b|\bwhat do you think\b"
                 r"|\bwhere do i start\b|\bany (notes|suggestions|ideas)\b|\bhow can i make\b|\bmix (notes|review)\b|\brundown\b|"
                 r"\bsit right\b|up or down\b|what goes (up|down)|what would you (change|do|move|tweak)|what'?s your take|"
                 r"(does|is) (this|my|the) mix (work|sound|ok|okay|good|alright|balanced|right|any good)|mix sound|"
                 r"how are (my|the) levels|levels? looks?|anything stand out|give it a listen|what to fix|rate my mix|"
                 r"how does (it|this|my mix) sound|take a look|have a listen|is it balanced|am i close|how close am i"),
)
"""Intent → its cue words (a message may hold several cues; :func:`understand` weighs them)."""
_EXPORT_CUE = dict(CUES)["export"]
_CUE_PATTERNS = tuple((name, re.compile(pattern)) for name, pattern in CUES)
# Cues decisive on their own: what they name cannot be meant otherwise.
DECISIVE = ("greeting", "thanks", "undo_push", "push", "export", "judge", "undo_plain", "mastering")
# The rest in the order they win when a message holds several (the first strong one wins; among
# weak ones only, the examples may pick).
PRIORITY = ("help", "what_if", "mix_level", "overall", "ranking", "can_stay", "group", "undo", "apply", "forget",
            "own_move", "advisor", "why", "how_much", "plot", "bundle", "list", "scope", "which", "measure", "compare",
            "overview")
WEAK = frozenset({"scope", "which", "stem", "measure", "compare", "overview"})
"""Cues the examples may overrule: common words that many requests hold."""
WITH_STEMS = frozenset({"stem", "why", "how_much", "measure", "bundle", "what_if", "own_move", "scope", "forget",
                        "apply", "group"})
"""What a message that names stems and holds no cue can ask (the examples pick among these)."""
AMOUNT_INTENTS = ("what_if", "own_move")
VAGUE = re.compile(r"^\W*(turn (it|that|this) (up|down)|(bring|push|pull) (it|that) (up|down)( a bit| a little)?|"
                   r"louder|quieter|softer|more|less|too much|too little|fix (it|this|that)|make it better|"
                   r"it'?s (off|wrong|not right)|(up|down)( a bit)?|change it|sort it( out)?)\W*(a bit|a little|pls|please)?"
                   r"\W*$")
REFERENCE_WORDS = re.compile(r"\b(ref|reference|version b|b mix|the b|as b)\b")


def cues(lowered: str) -> list[str]:
    """The intents whose cue words ``lowered`` holds, in :data:`CUES` order."""
    return [name for name, pattern in _CUE_PATTERNS if pattern.search(lowered)]


# -- reading one message ----------------------------------------------------------------------------


def _pick(found: list[str], lowered: str, stems: Sequence[str], db: float | None, vote: Vote | None,
          missing: Sequence[str], *, signed: bool = False) -> tuple[str, str]:
    """The intent from the cues ``found`` and the examples' ``vote``, and what decided it (``db``: an
    amount the message gives; ``signed``: with a direction)."""
    for name in DECISIVE:
        if name in found:
            return {"undo_plain": "undo", "mastering": "scope"}.get(name, name), "cue"
    if "help" in found and not stems:
        return "help", "cue"
    if not stems and VAGUE.match(lowered):
        return "clarify", "cue"
    candidates = [name for name in PRIORITY if name in found]
    moving = db is not None or UP_WORDS.search(lowered) or DOWN_WORDS.search(lowered)
    if "what_if" in candidates and moving and (stems or missing or db is not None):
        return "what_if", "cue"
    candidates = [name for name in candidates if name != "what_if"]
    if "advisor" in candidates and advisor_named(lowered) is None and not re.search(r"\b(advisor|model)\b", lowered):
        candidates.remove("advisor")
    if "advisor" in candidates and "undo" in candidates:
        candidates.remove("undo")  # "go back to the measured one"
    if "own_move" in candidates and (db is None or "apply" in candidates and not re.search(
            r"\b(instead|only|just|rather)\b", lowered)):
        candidates.remove("own_move")
    if "own_move" in candidates and db is not None and not {"group", "ranking", "mix_level"} & set(candidates):
        return "own_move", "cue"
    if "forget" in candidates and not stems and not re.search(r"\b(all|every|everything|pending|moves?|changes?|"
                                                             r"suggestions?|that|it|them|the rest)\b", lowered):
        candidates.remove("forget")  # "what can I leave alone" asks which stems can stay
    if "mix_level" in candidates and REFERENCE_WORDS.search(lowered) and not re.search(r"headroom|clip", lowered):
        candidates = ["overall" if name == "mix_level" else name for name in candidates]
    if stems and "mix_level" in candidates and not re.search(r"\b(mix|master|mixdown)\b", lowered):
        candidates = ["measure" if name == "mix_level" else name for name in candidates]
    if stems and "overall" in candidates:
        candidates.remove("overall")
    if (stems or missing) and "which" in candidates:
        candidates = ["stem" if name == "which" else name for name in candidates]
    if stems and candidates and candidates[0] == "overview":
        candidates = ["stem", *candidates[1:]]
    if "group" in candidates and ("apply" in candidates or "forget" in candidates):
        candidates.remove("group")  # "apply everything except the drums" is an apply
    if "group" in candidates and len(stems) < 2 and not re.search(
            r"rhythm section|the band|instrumental|backing track|music bed|the music|the instruments|everything|"
            r"\ball (but|except)|without the|minus the", lowered):
        candidates.remove("group")
    if "scope" in candidates and candidates.index("scope") > 0:
        candidates.remove("scope")
    candidates = list(dict.fromkeys(candidates))
    strong = [name for name in candidates if name not in WEAK]
    if strong:
        return strong[0], "cue"
    if stems and signed and not {"scope", "measure"} & set(candidates):
        return "own_move", "cue"  # "vocals -3", "up the keys by 1.5": the producer's own move (asked back first)
    if candidates:
        if vote is not None and vote.intent in candidates and vote.share(vote.intent) >= 0.5 and vote.best >= SURE:
            return vote.intent, "cue+examples"
        return candidates[0], "cue"
    if vote is None or vote.intent is None:
        return ("stem" if stems or missing else "unknown"), "none"
    top = vote.intent
    if stems or missing:
        return (top if top in WITH_STEMS and vote.share(top) >= 0.6 and vote.best >= SURE and
                (top not in AMOUNT_INTENTS or db is not None) else "stem"), "examples"
    if vote.best >= SURE:
        second = vote.ranked[1] if len(vote.ranked) > 1 else None
        if second is not None and vote.share(vote.ranked[0][0]) - vote.share(second[0]) < CLOSE:
            return "clarify", "examples"
        if top in AMOUNT_INTENTS and db is None:
            return "clarify", "examples"
        return top, "examples"
    return "unknown", "none"


def understand(text: str, stem_names: Sequence[str], *, matcher: ExampleMatcher | None = None,
               pending: Mapping[str, float] | None = None, focus: str | None = None) -> Request:
    """Read one message into a :class:`Request`.

    Args:
        text: the producer's message.
        stem_names: the session's stems (Version A), or none loaded.
        matcher: the examples that vote on paraphrases (None: the cues alone).
        pending: the pending moves (stem → dB): a producer's own amount without a direction
            ("only 2 dB on the vocals") keeps the direction of the move it replaces.
        focus: the stem the conversation is about ("make it −2" means it).
    """
    lowered = " ".join(text.casefold().split())
    if not lowered:
        return Request("help", how="none")
    path = path_in(text)
    if path is not None and not re.search(_EXPORT_CUE, lowered):
        return Request("reference" if REFERENCE_WORDS.search(lowered.replace(path.casefold(), " ")) else "load",
                       detail=path)
    found_mentions = mentions(text, stem_names)
    stems = list(dict.fromkeys(m.stem for m in found_mentions))
    parts = tuple(dict.fromkeys((m.phrase, m.stem) for m in found_mentions if m.is_part))
    missing = tuple(missing_instruments(text, stem_names, found=found_mentions))
    value, sign = amount(lowered)
    found = cues(lowered)
    vote = matcher.vote(text, stem_names) if matcher is not None else None
    intent, how = _pick(found, lowered, stems, value, vote, missing, signed=sign is not None)
    common = {"parts": parts, "missing": missing, "how": how}
    if intent in ("clarify", "unknown"):
        closest = [name for name, _ in (vote.ranked if vote else ())][:3]
        return Request(intent, tuple(stems), alternatives=tuple(closest), **common)
    if intent in AMOUNT_INTENTS:
        target = stems[:1] or ([focus] if focus and intent == "own_move" else [])
        if sign is None and value is not None:
            held = (pending or {}).get(target[0]) if target else None
            sign = (1 if held > 0 else -1) if held else None
        db = None if value is None or sign is None else sign * value  # no direction: asked back, never guessed
        return Request(intent, tuple(stems[:1]), db=db, **common)
    if intent in ("apply", "forget"):
        only, left_out = split_except(lowered, found_mentions)
        rest = _REST.search(lowered)
        if intent == "forget" and not left_out and rest is not None and only:
            clause = re.split(r"[,;.]|\band\b|\bthen\b", lowered[rest.start():])[0]
            clause = re.split(r"[,;.]|\band\b|\bthen\b", lowered[:rest.start()])[-1] + clause
            if _FORGET_VERBS.search(clause):  # "keep the vocals, forget the rest"
                only, left_out = [], only
        elif not left_out:  # "never mind the drums, apply" / "forget the drums but keep the vocals"
            only, left_out = split_by_clause(lowered, found_mentions, _SKIP if intent == "apply" else _KEEP)
        if intent == "forget" and not only and (left_out or re.search(r"\b(all|every|everything|clear|reset|the rest)\b",
                                                                      lowered)):
            return Request("forget", except_stems=tuple(left_out), detail="all", **common)
        return Request(intent, tuple(only), except_stems=tuple(left_out) if intent == "apply" else (), **common)
    if intent == "group":
        only, left_out = split_except(lowered, found_mentions)
        if left_out or re.search(r"\b(everything|all) (but|except|apart from|other than|besides)\b", lowered):
            members = [name for name in stem_names if name not in left_out]
        elif re.search(r"\binstrumental\b|\bthe band\b|\bbacking track\b|\bmusic bed\b|\bthe music\b|"
                       r"\bthe instruments\b|without the (vox|vocals?)|minus the (vox|vocals?)", lowered):
            vocal = {m.stem for m in mentions("vocals", stem_names)}
            members = [name for name in stem_names if name not in vocal]
        elif re.search(r"\brhythm section\b", lowered) and len(only) < 2:
            members = [m.stem for m in mentions("drums bass", stem_names)]
        else:
            members = only
        order = {name: index for index, name in enumerate(stem_names)}
        return Request("group", tuple(sorted(dict.fromkeys(members), key=lambda s: order.get(s, 99))), **common)
    if intent == "which":
        return Request("which", detail=side(lowered), **common)
    if intent == "ranking":
        return Request("ranking", n=count(lowered), **common)
    if intent == "mix_level":
        return Request("mix_level", detail=mix_detail(lowered), **common)
    if intent == "plot":
        return Request("plot", detail=plot_detail(lowered), **common)
    if intent in ("push", "undo_push"):
        ports = {("port" if key == "port" else "listen_port"): int(number)
                 for key, number in re.findall(r"\b(port|listen)\s+(\d{2,5})\b", lowered)}
        return Request(intent, detail=daw_named(lowered), ports=ports if intent == "push" else {}, **common)
    if intent == "export":
        project = path_in(text)
        return Request("export", detail=project if project and re.search(r"\.(rpp|ardour)$", project, re.IGNORECASE)
                       else None, **common)
    if intent == "advisor":
        return Request("advisor", detail=advisor_named(lowered), **common)
    if intent == "stem" and not stems and missing:
        return Request("stem", **common)
    return Request(intent, tuple(stems), **common)


SLASH_REQUESTS = frozenset({"/load", "/reference", "/advise", "/apply", "/plot", "/export-project", "/push"})
"""The slash commands that are requests (:func:`command_request`); the rest act on the chat itself."""


def command_request(command: str, args: Sequence[str], stem_names: Sequence[str]) -> Request | None:
    """The request a slash command makes, read from its words directly (no sentence is parsed), or
    None when its arguments do not fit (the caller shows its usage). ``/apply vox drums`` applies
    those stems' moves; ``/apply --except drums`` all but the drums."""
    def stems_of(words: Sequence[str]) -> tuple[str, ...]:
        found = [m.stem for word in words for m in mentions(word, stem_names)[:1]]
        return tuple(dict.fromkeys(found)) if len(found) == len(words) else ("?",)
    if command in ("/load", "/reference"):
        return Request(command[1:], detail=args[0], how="command") if len(args) == 1 else None
    if command == "/advise":
        if not args:
            return Request("overview", how="command")
        return Request("advisor", detail=args[0], how="command") if len(args) == 1 else None
    if command == "/apply":
        if "--except" in args:
            at = args.index("--except")
            only, left_out = stems_of(args[:at]), stems_of(args[at + 1:])
            if "?" in only + left_out or not left_out:
                return None
            return Request("apply", only, except_stems=left_out, how="command")
        only = stems_of(args)
        return None if "?" in only else Request("apply", only, how="command")
    if command == "/plot":
        return Request("plot", detail="loudness" if args[:1] == ["loudness"] else "levels", how="command") \
            if len(args) <= 1 and args[:1] in ([], ["levels"], ["loudness"]) else None
    if command == "/export-project":
        return Request("export", detail=args[0] if args else None, how="command") if len(args) <= 1 else None
    if command == "/push":
        if not 1 <= len(args) <= 2 or args[0] not in ("reaper", "ardour") or (len(args) == 2 and not args[1].isdigit()):
            return None
        return Request("push", detail=args[0], ports={"port": int(args[1])} if len(args) == 2 else {}, how="command")
    return None
