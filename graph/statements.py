"""Every first-person statement in what the user says, with its subject: how
the offline model learns (graph/remember.py), acknowledges ("Thanks, I'll
remember that: …") and reads back what it was told (graph/told.py). One
memory per subject (graph/subjects.py reads a sentence's subject): a later
statement of a subject supersedes the earlier.

A message is split into sentences and clauses ("…, and I …"); a sentence
going on about what the one before it named is kept with it ("I have a dog.
His name is Rex."); greetings, passing states ("I'm tired") and questions are
not statements. The kinds of fact and of question are graph/facts.py's.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import replace

from graph.facts import GREETING, HELLO, NOT_NAMES, intros, squeezed
from graph.intents import recognise
from graph.subjects import WE_TWO, Statement, statement_of, subject_words

# A sentence ends at . ! ? or a line end, except after a title ("Dr. Hansen");
# "…, and I …" starts a new statement.
_SENTENCE_END = re.compile(
    r"(?<!\bDr\.)(?<!\bMr\.)(?<!\bMrs\.)(?<!\bMs\.)(?<!\bSt\.)(?<!\bProf\.)(?<=[.!?])\s+|\n+"
)
_CLAUSE = re.compile(
    r",?\s+(?:and|but)\s+(?:(?:now|then|also|still|currently|today|recently),?\s+)?"
    # not "My girlfriend and I are …": one subject of two
    r"(?=(?:i(?!\s+(?:are|were)\b)|i'm|i’m|im|my|we)\b"
    r"|(?:everyone|everybody|people|friends)\s+calls?\s+me\b)"
    r"|,\s*(?=(?:i|i'm|i’m)\s)|;\s*(?=(?:i|i'm|i’m|im|my)\b)",
    re.IGNORECASE,
)


def _clauses(sentence: str) -> list[str]:
    """A sentence's clauses ("I live in Rome and I work at FAO": two)."""
    found = _CLAUSE.split(sentence)
    if len(found) > 1 and WE_TWO.match(sentence):  # "My partner and I just bought …"
        found[:2] = [f"{found[0]} and {found[1]}"]
    return found


# A sentence naming what the one before it spoke of ("I have a dog. His name
# is Rex.", "My sister had a baby. She's called Mia."): said with it.
_NAMED_AFTER = re.compile(
    r"^(?:(?:his|her|its|their)\s+names?\s+(?:is|are)"
    r"|(?:he|she|it|they)(?:'s|’s|'re|’re|\s+is|\s+are)\s+(?:called|named))\s",
    re.IGNORECASE,
)
# A sentence going on about the someone the one before it named ("My sister
# Anna lives in Rome. She is a doctor.", "I have two sisters, Anika and Meera.
# Anika is a lawyer."): said with it too. Not after what the user said of
# themselves ("I live in Oslo. She …" goes on about no one named).
_GOES_ON = re.compile(r"^(?:he|she|they)(?:'s|’s|'re|’re|\s)\s*\w", re.IGNORECASE)
# Someone (or a pet) of theirs, whom "he", "she" or "they" may go on about.
_SOMEONE = re.compile(
    r"\b(?:my|our)\s+\w|\b(?:have|has|got|adopted|own)\s+(?:a|an|one|two|three|four|five|\d+)\s+\w",
    re.IGNORECASE,
)
_CAPITALISED = re.compile(r"\b[A-Z][\w'’-]*")
# Capitalised words that name someone: not a place ("… lives in Rome").
_NAMED = re.compile(r"(?<!\bin\s)(?<!\bat\s)(?<!\bto\s)(?<!\bfrom\s)(?<!\bnear\s)\b[A-Z][\w'’-]*")
_NOT_NAMED = frozenset({"I", "My", "Our"})


def names_in(text: str, *, first: bool = True) -> set[str]:
    """The capitalised words of `text` that name someone (or something of
    theirs), lower case: not "I" or "My", not a place ("… lives in Rome"), and
    not its first word unless `first` (a question's first word is a question
    word; a statement's may be a name: "Mia is 7")."""
    text = text.strip()
    return {
        word.lower()
        for match in _NAMED.finditer(text)
        if (word := match[0]) not in _NOT_NAMED and (first or match.start() > 0)
    }


_THEIR_OWN = frozenset({"name", "preferred name", "location", "work", "age", "origin"})


def _goes_on_about(sentence: str, before: Statement, earlier: bool = False) -> bool:
    """Whether `sentence` goes on about someone `before` named (said in an
    `earlier` message: only by "he", "she" or "they"; by their name, it is a
    statement of its own, `_about_someone_named`)."""
    if before.subject in _THEIR_OWN or before.kind == "preference":
        return False
    if _GOES_ON.match(sentence):  # "She …" after "My wife …", "I have a dog", "… Lena"
        return bool(_SOMEONE.search(before.sentence) or names_in(before.sentence, first=False))
    if earlier:
        return False
    first = _CAPITALISED.match(sentence)
    return first is not None and first[0].lower() in names_in(before.sentence, first=False)


# Of "we", what the user's household has and does ("We have two kids", "We
# just adopted a puppy"); "We should talk about it" says nothing of them, nor
# "Our conversation yesterday …" (theirs with the assistant), as "My question
# is …" says nothing of the user.
_FIRST_PERSON = re.compile(
    r"^(?:i|i'm|i’m|i've|call me|(?:everyone|everybody|people|friends)\s+calls?\s+me"
    r"|my(?!\s+(?:question|point|bad|mistake|apologies|pleasure|guess)\b)"
    r"|our(?!\s+(?:conversation|chat|discussion|session|thread|talk|last|previous|earlier)\b)"
    r"|we(?:'ve|’ve)?\s+(?:just\s+|recently\s+|now\s+|also\s+)?(?:have|own|live|moved|adopted"
    r"|got|bought|are\s+expecting|got\s+married|'re\s+expecting))\b"
    # "We're going to Portugal in August", "We are getting married in June"
    r"|we(?:'re|’re|\s+are)\s+(?:(?:going|flying|driving|travel+ing)\s+to\s+(?-i:[A-Z])"
    r"|going\s+on\s+(?:holiday|vacation|a\s+trip|a\s+cruise|honeymoon)"
    r"|getting\s+(?:married|engaged|divorced|a|an|new)|(?:moving|relocating|planning|expecting"
    r"|visiting|renovating|buying|selling|saving|trying)\b)",
    re.IGNORECASE,
)
# An introduction begins with who they are: a name, an age, a role in a few
# words, where they are from; after it, "…, 28, from Seoul, living in Berlin".
_INTRO_FIRST = re.compile(
    r"^(?i:i am|i'm|i’m)\s+(?:[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*)?|\d{1,3}(?i:\s+years?\s+old)?"
    r"|(?i:an?)\s+\w+(?:\s+\w+){0,2}|(?i:(?:originally\s+)?from)\s+[A-Z][\w'’ -]*)"
    r"(?:\s+(?i:from)\s+[A-Z][\w'’ -]*)?$"  # "I'm a nurse from Leeds, 34"
)
_INTRO_PART = re.compile(
    r"(?:,\s*(?:and\s+|but\s+)?|\s+(?:and|but)\s+)(?:now\s+)?"
    r"(?=(?:\d{1,3}(?:\s+years?\s+old)?\s*(?:,|$|and\b|but\b)|(?:originally\s+)?from\s"
    r"|(?:now\s+)?(?:living|based|working)\s+(?:in|at|for)\s|an?\s+(?!bit\b|little\b|lot\b)\w))",
    re.IGNORECASE,
)
_WITH_MY = re.compile(r"\bwith\s+(?P<rest>(?:my|our)\s+\w[\w' ,-]{2,80})$", re.IGNORECASE)
# The people (and pets) of "with my husband Pedro and our dog Bolt", one by one.
_EACH_OF_MINE = re.compile(r"\s*,\s*(?:and\s+)?(?=(?:my|our)\s)|\s+and\s+(?=(?:my|our)\s)", re.I)
_WHOSE = re.compile(r"^(?P<whose>my|our)\s+(?P<rest>.+)$", re.IGNORECASE)
_WHO_NAMED = re.compile(
    r"^(?P<who>[a-z][\w' -]{1,40}?)\s+(?P<name>[A-Z][\w'’-]+(?:\s+[A-Z][\w'’-]+)?)$"
)
# "Im 35", as typed in a hurry: "I'm 35"; and a change in their life said
# without "I" ("Just moved to Bristol!", "Started a new job at Arup"): "I …".
_IM = re.compile(r"^im\b", re.IGNORECASE)
# Only such changes: "Got it, thanks" and "Moved on to the next topic" are not.
_NO_I = re.compile(
    r"^(?:just\s+|recently\s+|finally\s+)?(?:moved\s+(?:to|into|back\s+to|house)"
    r"|started\s+(?:a|my)\s+(?:new\s+)?(?:job|role|position|course|degree)"
    r"|got\s+(?:married|engaged|divorced|promoted|(?:a|an)\s+(?:new\s+)?(?:job|dog|cat|puppy"
    r"|kitten|car|house|flat))|adopted\s+(?:a|an|two|three)|graduated|retired"
    r"|quit\s+(?:my|smoking|drinking)|bought\s+(?:a|an|our|my)\s+(?:new\s+)?(?:house|flat"
    r"|apartment|home|car)|got\s+back\s+from\s+(?-i:[A-Z])\w*)\b",
    re.IGNORECASE,
)
# And those said without "I'm" or "I've" ("Moving to Berlin next month!",
# "Currently reading Dune", "Been vegan since 2019"): "I'm …", "I've …".
_NO_I_AM = re.compile(
    r"^(?:(?:just\s+|now\s+|currently\s+)?(?:moving|relocating)\s+to\s+(?-i:[A-Z])"
    r"|currently\s+(?:reading|learning|training|studying|working|living)\b)",
    re.IGNORECASE,
)
_NO_I_HAVE = re.compile(
    r"^been\s+(?:vegan|vegetarian|pescatarian|sober|married|single|divorced|retired|engaged"
    r"|together|living|working|learning|playing|running|teaching|studying)\b.*\b(?:since|for)\b",
    re.IGNORECASE,
)
# "I'm vegan", "I am 29": one word said of themselves; unless it is a passing
# state ("I'm tired", "I am back"), which is not worth remembering.
_I_AM_ONE_WORD = re.compile(r"^(?:i am|i'm|i’m)\s+(?P<word>[\w-]+)$", re.IGNORECASE)
_PASSING = frozenset(
    """tired fine ok okay good great back here there done ready sorry sure busy bored hungry
    thirsty confused curious lost late early home new well alright happy sad excited stuck
    sick awake asleep listening in out off on going leaving joking kidding serious
    interested glad thankful grateful impressed surprised worried afraid scared""".split()  # noqa: SIM905
)


def _in_passing(sentence: str) -> bool:
    one = _I_AM_ONE_WORD.match(sentence)
    return one is not None and one["word"].lower() in _PASSING


def statements(
    text: str, named: frozenset[str] = frozenset(), after: str = "", greeted: bool = False
) -> list[Statement]:
    """Every sentence of `text` in which the user says something about
    themselves ("I …", "My …", "I'm …", "Call me …"), questions excepted; with
    `named`, the people (and things) they named before in the conversation
    (`named_by`), also a sentence about one of them ("Leo is 7", after "We
    have two kids, Leo and Mia"). With `after`, the last statement they made
    before `text`, a message going on about whom it spoke of ("She's a nurse",
    after "My girlfriend is Sarah") is kept with it, as a sentence after it in
    one message is: "My girlfriend is Sarah; she's a nurse", of its subject.
    `greeted`: the message before was a greeting alone ("hey", then "im lucas").

    The offline model reads the window's every question for them at every
    turn (0.4 ms a turn for a window of ten, measured): a text of a usual
    length is read once (the last 2,048 such texts are held)."""
    if len(text) > 1000:
        return list(_statements_in(text, named, after, greeted))
    return list(_statements_of(text, named, after, greeted))


def named_by(sentences: Iterable[str]) -> frozenset[str]:
    """Who (or what of theirs) the user named in these statements, lower case:
    "We've got two kids, Leo and Mia" names leo and mia."""
    return frozenset(name for sentence in sentences for name in names_in(sentence, first=False))


def statements_by_turn(
    texts: Iterable[str],
    named: frozenset[str] = frozenset(),
    after: str = "",
    greeted: bool = False,
) -> list[list[Statement]]:
    """The statements of each of a conversation's messages, in order, each
    read with the names the ones before it gave, the last statement made
    before it, and whether the message before it was a greeting alone (and
    `named`, `after` and `greeted`, from before them)."""
    found: list[list[Statement]] = []
    for text in texts:
        found.append(statements(text, named, after, greeted))
        named |= named_by(st.sentence for st in found[-1])
        after = found[-1][-1].sentence if found[-1] else after
        greeted = greeting_alone(text)
    return found


def greeting_alone(text: str) -> bool:
    """Whether `text` is a greeting and nothing else: "hey", "hi there!" (not
    "ok" or "sorry", which greet no one)."""
    said = text.strip()
    return _HELLO.match(said) is not None and not GREETING.sub("", said + " ").strip()


def statements_in_turns(
    texts: Iterable[str],
    named: frozenset[str] = frozenset(),
    after: str = "",
    greeted: bool = False,
) -> list[Statement]:
    """`statements_by_turn`, one list."""
    return [st for said in statements_by_turn(texts, named, after, greeted) for st in said]


# Their name put right, after they gave it: "No wait, it's John with an h",
# "sorry, it is Jon".
_NAME_FIXED = re.compile(
    r"^(?:(?:no|nope|sorry|oops|wait|actually|i mean|typo)\b[\s,.!:-]*)+"
    r"it(?:'s|’s|s|\s+is)\s+(?P<name>[\w'’-]+)(?=\s*(?:$|[.,!]|with\b|spelled\b))",
    re.IGNORECASE,
)
_NOT_A_FIX = frozenset(
    ["fine", "ok", "okay", "right", "correct", "wrong", "true", "nothing", "me", "alright"]
)


def _name_fixed(text: str) -> str | None:
    """The name in "No wait, it's John": capitalised, or in a message typed all
    in lower case ("sorry its jon"); not "No, it's fine"."""
    fixed = _NAME_FIXED.match(text)
    if fixed is None:
        return None
    name = fixed["name"]
    if name[0].isupper() or (text.islower() and name not in _NOT_A_FIX | _PASSING | NOT_NAMES):
        return name
    return None


# A sentence about someone named before: the name, then what is said of them.
_ABOUT_NAMED = re.compile(
    r"^(?P<name>[A-Z][\w'’-]*)\s+(?:is|was|has|had|turned|turns|works|lives|likes|loves|hates"
    r"|plays|studies|teaches|goes|just|also|will|can|got|started)\b"
)


def _about_someone_named(sentence: str, named: frozenset[str]) -> Statement | None:
    about = _ABOUT_NAMED.match(sentence)
    if about is None or about["name"].lower() not in named or len(sentence) > 300:
        return None
    return Statement("fact", subject_words(sentence, 8), sentence)


def _statements_in(
    text: str, named: frozenset[str] = frozenset(), after: str = "", greeted: bool = False
) -> tuple[Statement, ...]:
    # What was said before this message stands first, as a sentence before it would.
    prior = statements(after)[-1:] if after else []
    if prior and prior[0].subject == "name" and (fixed := _name_fixed(text.strip())):
        return (Statement("fact", "name", f"My name is {fixed}"),)  # "No wait, it's John"
    found: list[Statement] = list(prior)
    before = 0  # how many were found before the last sentence
    for raw in _SENTENCE_END.split(squeezed(text)):
        request = recognise(raw)
        if request is not None and request.kind == "remember":
            raw = request.topic  # "Remember that my mum is Ann": what it says
        elif raw.strip().endswith("?"):
            continue
        if len(found) > before and _NAMED_AFTER.match(raw.strip()):
            last = found[-1]  # "I have a dog; his name is Rex"
            naming = raw.strip(" .!")
            found[-1] = replace(last, sentence=f"{last.sentence}; {naming[:1].lower()}{naming[1:]}")
            continue
        if len(found) > before and _goes_on_about(raw.strip(), found[-1], found[-1] in prior):
            last, more = found[-1], raw.strip(" .!")  # "My wife is Lena; she teaches maths"
            more = (
                more
                if _CAPITALISED.match(more) and not _GOES_ON.match(more)
                else more[:1].lower() + more[1:]
            )
            found[-1] = replace(last, sentence=f"{last.sentence}; {more}")
            before = len(found) - 1  # and the sentence after it may go on too
            continue
        before = len(found)
        plain = GREETING.sub("", raw.strip() + " ").rstrip()  # "Hi!" alone: nothing left
        greeted = greeted or _HELLO.match(raw.strip()) is not None
        for number, clause in enumerate(_clauses(plain)):
            said = _when_last(GREETING.sub("", " ".join(clause.split())))
            if number == 0 and greeted:  # "hi im john", in lower case: a name
                said = _greeted_name(said)
            for sentence in _introduced(said):
                found += _worth_keeping(sentence)
        if len(found) == before and (named or found):  # "Leo is 7 and Mia is 4", Leo named before
            known = named | named_by(st.sentence for st in found)
            if other := _about_someone_named(plain.strip(" .!"), known):
                found.append(other)
        greeted = plain == "" and greeted  # "Hi! im kim": the greeting a sentence of its own
    if prior and found[0] == prior[0]:
        del found[0]  # this message did not go on about it
    return tuple(found)


# When, said first: "Last week I moved to Bangalore", "In 2019 we lived in Oslo".
_WHEN_FIRST = re.compile(
    r"^(?P<when>(?:last|this)\s+(?:week|weekend|month|year|night|summer|winter|spring|autumn"
    r"|fall|monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
    r"|yesterday|today|tonight|recently|lately|nowadays|these\s+days"
    r"|(?:a|an|one|two|three|four|five|six|a\s+few|\d+)\s+(?:days?|weeks?|months?|years?)\s+ago"
    r"|in\s+(?:\d{4}|january|february|march|april|may|june|july|august|september|october"
    r"|november|december))"
    r",?\s+(?P<said>(?:i|i'm|i’m|i've|i’ve|im|my|we|we've|we’ve|our)\b.*)$",
    re.IGNORECASE,
)


def _when_last(said: str) -> str:
    """ "Last week I moved to Bangalore" -> "I moved to Bangalore last week": what
    they say of themselves first, as the patterns read it."""
    when = _WHEN_FIRST.match(said)
    return f"{when['said'].rstrip(' .!,;')} {when['when'].lower()}" if when else said


# A greeting proper, before an introduction ("hi im john"), not a filler ("so im …").
_HELLO = re.compile(rf"^(?:{HELLO})\b", re.IGNORECASE)
# An introduction typed in lower case: "im john", "i am sam, 28, from seoul".
_LOWER_INTRO = re.compile(r"^(?:i'm|i’m|im|i am)\s+(?P<word>[a-z][a-z'’-]*)(?=\s*(?:,|$)|\s+and\s)")


def _greeted_name(said: str) -> str:
    """After a greeting, "im john" introduces John, as a name is written: one
    word, then nothing or more of the introduction ("im kim, 28, from seoul");
    not a passing state ("hi, I'm tired"), a doing ("hey im leaving"), nor a
    word a name seldom is ("hello, I'm vegan")."""
    said = said.strip(" .!,;")
    one = _LOWER_INTRO.match(said)
    word = one["word"] if one is not None else ""
    if not word or word.endswith("ing") or word in _PASSING | NOT_NAMES:
        return said
    return f"I'm {word[:1].upper()}{word[1:]}{said[one.end() :]}" if one else said


# "I'm a nurse from Leeds", "I'm Carla from Lima": what they do or who they
# are, and where they are from.
_ROLE_FROM = re.compile(
    r"^(?P<role>(?i:i am|i'm|i’m)\s+(?:(?i:an?)\s+[\w' -]+?|[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*)?))"
    r"\s+(?i:from)\s+(?P<place>[A-Z][\w'’ -]*)$"
)


def _introduced(clause: str) -> list[str]:
    """A clause's statements: "I'm Kim, 28, from Seoul but living in Berlin now"
    says four things ("I'm Kim", "I'm 28", "I'm from Seoul", "I'm living in
    Berlin now"), and "I'm a nurse from Leeds" two."""
    sentence = _with_i(clause.strip(" .!,;"))
    first, *more = _INTRO_PART.split(sentence)
    if not more or not _INTRO_FIRST.match(first.strip(" ,")):
        said = [sentence]  # "I'm going to a concert and a party" is one
    else:
        said = [first.strip(" ,"), *(f"I'm {part.strip(' .!,;')}" for part in more)]
    return [part for one in said for part in _role_and_origin(one)]


def _role_and_origin(sentence: str) -> list[str]:
    role_from = _ROLE_FROM.match(sentence)
    if role_from is None:
        return [sentence]
    return [role_from["role"], f"I'm from {role_from['place']}"]


def _worth_keeping(sentence: str) -> list[Statement]:
    if len(sentence) > 300 or not _FIRST_PERSON.match(sentence) or _in_passing(sentence):
        return []
    # "I'm Marta", "I'm 29", "I'm vegan" are enough; "I'm tired" is not.
    if not (len(sentence.split()) >= 3 or intros(sentence) or _I_AM_ONE_WORD.match(sentence)):
        return []
    statement = statement_of(sentence)
    # "I live in Bristol with my partner Alex": the partner is kept apart too,
    # as a later home or job replaces this statement.
    if statement.subject in ("location", "work") and (along := _WITH_MY.search(sentence)):
        return [statement, *map(statement_of, _companions(along["rest"]))]
    return [statement]


def _companions(said: str) -> list[str]:
    """ "my husband Pedro and our dog Bolt": "My husband is Pedro", "Our dog is
    Bolt"; one not named is said as it was ("My two cats")."""
    found = []
    for part in _EACH_OF_MINE.split(said):
        whose = _WHOSE.match(part.strip())
        if whose is None:
            continue
        owner = whose["whose"].capitalize()
        named = _WHO_NAMED.match(whose["rest"])  # "partner Alex": "My partner is Alex"
        found.append(
            f"{owner} {named['who']} is {named['name']}" if named else f"{owner} {whose['rest']}"
        )
    return found


_statements_of = functools.lru_cache(maxsize=2048)(_statements_in)


def _with_i(sentence: str) -> str:
    """ "Im 35" -> "I'm 35"; "Just moved to Bristol" -> "I just moved to Bristol";
    "Moving to Berlin" -> "I'm moving to Berlin"."""
    sentence = _IM.sub("I'm", sentence)
    for missing, said in ((_NO_I, "I"), (_NO_I_AM, "I'm"), (_NO_I_HAVE, "I've")):
        if missing.match(sentence):
            return f"{said} {sentence[:1].lower()}{sentence[1:]}"
    return sentence
