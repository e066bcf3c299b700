"""Under which subject one sentence the user said of themselves is kept: their
name, what to call them, where they live, their work, age and origin, a liking
("likes tea", "dislikes coffee"), a thing of theirs ("my dog"), else its first
words. One memory per subject: a later statement of a subject supersedes the
earlier. graph/statements.py finds the sentences."""

from __future__ import annotations

import re
from dataclasses import dataclass

from graph.facts import intros

# What "I'm a …" names as their work when its words end at one of these:
# "I'm a primary school teacher in Glasgow", "I'm a retired nurse"; not "I'm a
# morning person" or "I'm a big fan of chefs" (no "of" before it).
_OCCUPATIONS = "|".join(
    """teacher nurse doctor physician gp surgeon dentist pharmacist vet veterinarian midwife
    paramedic therapist physiotherapist psychologist psychiatrist counsellor counselor carer
    caregiver nanny engineer developer programmer coder designer architect lawyer solicitor
    attorney barrister judge paralegal accountant auditor banker economist analyst consultant
    manager director executive ceo cto cfo founder entrepreneur freelancer contractor
    scientist researcher professor lecturer tutor student intern chef cook baker waiter
    waitress bartender barista driver pilot mechanic electrician plumber carpenter builder
    farmer gardener journalist writer author editor translator interpreter photographer
    artist illustrator animator musician singer composer actor actress dancer librarian
    cashier salesman saleswoman realtor recruiter marketer receptionist secretary
    administrator technician clerk officer firefighter soldier sailor hairdresser barber
    butcher tailor welder surveyor optician radiographer statistician mathematician physicist
    chemist biologist geologist historian archaeologist filmmaker producer podcaster
    streamer blogger""".split()  # noqa: SIM905 - words read better than a list
)
_SUBJECTS: tuple[tuple[str, str, re.Pattern[str]], ...] = tuple(
    (kind_name, memory_kind, re.compile(pattern, re.IGNORECASE))
    for kind_name, memory_kind, pattern in (
        ("name", "fact", r"^(?:my name is|my name's|i am called|i'm called)\b"),
        (
            "preferred name",
            "fact",
            r"^(?:call me|please call me|i go by"
            r"|(?:everyone|everybody|people|(?:my )?friends) calls? me)\b",
        ),
        (
            "location",
            "fact",
            r"^(?:i live|i'm living|i am living|i am based|i'm based|i moved|i relocated"
            r"|i(?:'ve|’ve| have) (?:just |recently )?(?:moved|relocated)"
            r"|we live|we moved|we relocated|we(?:'ve|’ve| have) (?:just |recently )?moved)\b",
        ),
        (
            "work",
            "fact",
            r"^(?:i work|i'm working|i am working|i'm employed|i am employed"
            r"|i (?:just |recently )?started (?:a|my) (?:new )?(?:job|role|position)"
            r"|i (?:just |recently )?started (?:working|to work) (?:as|at|for|in)\b"
            r"|i (?:just |recently )?(?:got|found|landed|took|accepted) (?:a|an) (?:new )?"
            r"(?:job|role|position) (?:as|at|with|for|in)\b"
            r"|(?:i am|i'm|i’m) (?:a|an) [\w' -]{2,60}? (?:at|for) \S"
            # a change of job: "I quit Microsoft and joined Amazon", "I left my job
            # as a nurse, now I'm a pilot", "I joined Arup as an engineer"; an employer
            # is named (capitalised): "I quit smoking and joined a gym" is no job
            r"|i (?:just |recently )?(?:quit|left) [\w' -]{1,60}?(?:,| and)? (?:just |recently )?"
            r"(?:(?:joined|started (?:at|with|working (?:at|for))) (?-i:[A-Z])"
            r"|now (?:i'm|i am|i’m) (?:a|an) \S|now (?:i )?work (?:at|for|as) \S)"
            r"|i (?:just |recently )?joined (?-i:[A-Z])[\w' -]{0,60}? as (?:a|an) \S"
            rf"|(?:i am|i'm|i’m) (?:a|an) (?:(?!of\b)[\w'-]+ ){{0,3}}?(?:{_OCCUPATIONS})s?\b)",
        ),
        (  # "I'm 30 now", "I turned 31 last week", "I'll be 40 in May"
            "age",
            "fact",
            r"^(?:(?:i am|i'm|i’m) (?:now )?\d{1,3}(?: (?:years? old|yo)\b|$| (?:now|already)$)"
            r"|i (?:just )?turned \d{1,3}\b|i(?: will|'ll|’ll) be \d{1,3}\b)",
        ),
        (
            "origin",
            "fact",
            r"^(?:(?:i am|i'm|i’m) (?:originally )?from|i (?:originally )?come from"
            r"|i was born in|i grew up in)\b",
        ),
    )
)
# "My dog is …", "Our house was …": of the thing named.
_MY_THING = re.compile(
    r"^(?:my|our)\s+(?P<subject>[\w' -]{1,60}?)\s+(?:is|are|was|were|lives|works|has)\b",
    re.IGNORECASE,
)
_LIKES = re.compile(
    r"^i\s+(?:(?:really|also|still|do|secretly|absolutely|totally|truly|genuinely|actually"
    r"|just|kind of|sort of)\s+)?(?:(?P<verb>like|love|prefer|enjoy|hate|dislike)"
    r"|(?P<not>(?:don't|don’t|do not|can't|can’t|cannot)\s+(?:really\s+)?(?:like|stand|bear)))"
    r"\s+(?P<what>.+)$",
    re.IGNORECASE,
)
# A word between "I" (or "we") and what they say of themselves: not part of
# what is said ("We just moved to Toronto" says where they live).
_ADVERB = re.compile(
    r"^(i|i'm|i’m|i am|we|we're|we’re|we are)\s+(?:now|currently|still|also|recently|just"
    r"|actually|really|finally|mostly|usually|no longer)\s+",
    re.IGNORECASE,
)
# "My wife and I": the user's household, as "we" is; one subject of two, not
# two clauses (graph/statements.py).
WE_TWO = re.compile(r"^(?:my|our)\s+[\w'-]+(?:\s+[\w'-]+)?\s+and\s+i\s+", re.IGNORECASE)
_FILLER_WORDS = re.compile(r"\b(?:a|an|the|really|very|also|just|actually)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Statement:
    """A first-person statement worth remembering: `subject` keeps different
    things apart (two statements with one subject: the later one holds)."""

    kind: str  # the memory kind: fact or preference
    subject: str
    sentence: str


def subject_words(text: str, limit: int = 6) -> str:
    """A subject from a text's first words, lower case, filler left out."""
    cleaned = _FILLER_WORDS.sub(" ", text.lower())
    return " ".join(re.findall(r"\w+", cleaned)[:limit])


def statement_of(sentence: str) -> Statement:
    """The statement `sentence` makes, with its subject."""
    # "My wife is Lena; she teaches maths" (a sentence and one going on about
    # it, kept together) is of the first one's subject.
    head = sentence.split("; ", 1)[0]
    if any(match.start() == 0 for match, _ in intros(head)):
        return Statement("fact", "name", sentence)
    plain = _ADVERB.sub(r"\1 ", head)  # "I now work for …" says where they work
    household = _ADVERB.sub(r"\1 ", WE_TWO.sub("we ", head))  # "My wife and I live in …"
    for subject, kind, pattern in _SUBJECTS:
        if pattern.match(plain) or pattern.match(household):
            return Statement(kind, subject, sentence)
    if likes := _LIKES.match(plain):
        verb = likes["verb"].lower() if likes["verb"] else "dislike"  # "I don't like …"
        return Statement("preference", f"{verb}s {subject_words(likes['what'], 4)}", sentence)
    if thing := _MY_THING.match(plain):
        return Statement("fact", subject_words(thing["subject"]), sentence)
    return Statement("fact", subject_words(plain, 8), sentence)
