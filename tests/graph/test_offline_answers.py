"""How the offline model reads what the user says of themselves, and which
memory answers a question (graph/facts.py, graph/statements.py, graph/offline.py): pure functions,
no database. Through the graph and the database: tests/graph/test_memory_turns.py."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from graph.facts import find_facts, second_person
from graph.offline import offline_reply
from graph.prompts import MEMORIES_SECTION, RELEVANT
from graph.remember import learn_by_pattern, worth_keeping
from graph.statements import statements
from graph.summary import fold_facts


@pytest.mark.parametrize(
    ("said", "subjects"),
    [
        (
            "Hi, I'm Marta and I live in Porto.",
            [("name", "I'm Marta"), ("location", "I live in Porto")],
        ),
        ("Hello there! My name's Bo.", [("name", "My name's Bo")]),
        ("I am Marta Silva", [("name", "I am Marta Silva")]),
        ("ok so I moved to Lisbon", [("location", "I moved to Lisbon")]),
        ("I'm French.", [("i m french", "I'm French")]),  # a nationality, not a name
        ("I'm vegan", [("i m vegan", "I'm vegan")]),
        (
            "I used to live in Madrid, but now I live in Valencia.",
            [
                ("i used to live in madrid", "I used to live in Madrid"),
                ("location", "I live in Valencia"),
            ],
        ),
        (  # a list after a comma is not a statement of its own
            "My favourite foods are pizza, my mum's lasagne and sushi.",
            [("favourite foods", "My favourite foods are pizza, my mum's lasagne and sushi")],
        ),
        (  # an introduction in one breath says several things
            "hey! im Kim, 28, from Seoul but living in Berlin now",
            [
                ("name", "I'm Kim"),
                ("age", "I'm 28"),
                ("origin", "I'm from Seoul"),
                ("location", "I'm living in Berlin now"),
            ],
        ),
        (  # a role and where they are from, then where they live now
            "I'm a software engineer from Osaka, now living in Berlin.",
            [
                ("work", "I'm a software engineer"),
                ("origin", "I'm from Osaka"),
                ("location", "I'm living in Berlin"),
            ],
        ),
        (
            "I'm Ana, an engineer at Arup",
            [("name", "I'm Ana"), ("work", "I'm an engineer at Arup")],
        ),
        ("I'm a product designer at Zalando", [("work", "I'm a product designer at Zalando")]),
        ("I'm tired, and a bit sad", [("i m tired and bit sad", "I'm tired, and a bit sad")]),
        (  # not an introduction: one statement, no "I'm a party"
            "I'm going to a concert and a party",
            [("i m going to concert and party", "I'm going to a concert and a party")],
        ),
        ("I'm 35, a nurse", [("age", "I'm 35"), ("work", "I'm a nurse")]),
        ("I'm tired", []),  # a passing state: nothing to keep
        ("I am back!", []),
        # typed in lower case after a greeting: a name all the same
        ("hi im john", [("name", "I'm John")]),
        ("Hello, i am sam!", [("name", "I'm Sam")]),
        (
            "Hi! im kim, 28, from seoul",
            [("name", "I'm Kim"), ("age", "I'm 28"), ("origin", "I'm from seoul")],
        ),
        ("hey im tired", []),
        ("hi im vegan", [("i m vegan", "I'm vegan")]),
        ("so im thinking", [("i m thinking", "I'm thinking")]),  # no greeting, and a doing
        ("hey im leaving", []),
        ("I secretly love karaoke", [("loves karaoke", "I secretly love karaoke")]),
        # what they do, and where they are from, in one breath
        ("I'm a nurse from Leeds", [("work", "I'm a nurse"), ("origin", "I'm from Leeds")]),
        ("I'm a morning person", [("i m morning person", "I'm a morning person")]),  # no job
        # a filler or an apology before it is not part of it
        ("oh and my mom lives with us", [("mom", "my mom lives with us")]),
        ("sorry, I meant my sons are 14 and 16", [("sons", "my sons are 14 and 16")]),
        ("PS my sister is a nurse", [("sister", "my sister is a nurse")]),
        ("I meant to call you", []),
        # a change in their life said without "I'm" or "I've"
        (
            "Moving to Berlin next month!",
            [("i m moving to berlin next month", "I'm moving to Berlin next month")],
        ),
        ("Been vegan since 2019", [("i ve been vegan since 2019", "I've been vegan since 2019")]),
        ("Just got back from Japan!", [("i got back from japan", "I just got back from Japan")]),
        ("Been busy since Monday", []),
        ("Moving on to the next topic", []),
        # "my partner and I": one subject of two, the household as "we" is
        (
            "My partner and I just bought a house in Bath",
            [
                (
                    "my partner and i bought house in bath",
                    "My partner and I just bought a house in Bath",
                )
            ],
        ),
        (
            "My wife and I live in Leeds and I work at Arup",
            [("location", "My wife and I live in Leeds"), ("work", "I work at Arup")],
        ),
        (  # whom they live with, each apart
            "I live in Lisbon with my husband Pedro and our dog Bolt.",
            [
                ("location", "I live in Lisbon with my husband Pedro and our dog Bolt"),
                ("husband", "My husband is Pedro"),
                ("dog", "Our dog is Bolt"),
            ],
        ),
        ("I'm a fan from way back", [("i m fan from way back", "I'm a fan from way back")]),
        ("I do like a good curry", [("likes good curry", "I do like a good curry")]),
        ("I like tea. im john", [("likes tea", "I like tea"), ("i m john", "I'm john")]),
        # who they are, and where they are from
        ("I'm Carla from Lima. Any books?", [("name", "I'm Carla"), ("origin", "I'm from Lima")]),
        ("I'm Italian from Rome", [("i m italian", "I'm Italian"), ("origin", "I'm from Rome")]),
        # after a semicolon, and after "and im", a statement of its own
        (
            "My name is Carla; I live in Lima.",
            [("name", "My name is Carla"), ("location", "I live in Lima")],
        ),
        ("hi im kim and im from seoul", [("name", "I'm Kim"), ("origin", "I'm from seoul")]),
        # a sentence naming what the one before spoke of is said with it
        ("I have a dog. His name is Rex.", [("i have dog", "I have a dog; his name is Rex")]),
        (
            "My sister had a baby. She's called Mia!",
            [("my sister had baby", "My sister had a baby; she's called Mia")],
        ),
        ("I live in Rome. It is hot today. Her name is Ada.", [("location", "I live in Rome")]),
        ("His name is Rex.", []),
        # what goes on about someone just named is said with them
        ("My wife is Lena. She teaches maths.", [("wife", "My wife is Lena; she teaches maths")]),
        (
            "I have two sisters, Anika and Meera. Anika is a lawyer.",
            [
                (
                    "i have two sisters anika and meera",
                    "I have two sisters, Anika and Meera; Anika is a lawyer",
                )
            ],
        ),
        (
            "My sister Anna lives in Rome. Rome is hot.",
            [("sister anna", "My sister Anna lives in Rome")],
        ),
        ("I live in Oslo. She is nice.", [("location", "I live in Oslo")]),
        # when, said first, is said last: the statement reads as any other
        ("Last week I moved to Bangalore.", [("location", "I moved to Bangalore last week")]),
        (
            "Two years ago I started a new job at Arup",
            [("work", "I started a new job at Arup two years ago")],
        ),
        ("Last week was fun", []),
        # a new job or a new home, however said, is where they work or live now
        ("I got a new job at Airbus.", [("work", "I got a new job at Airbus")]),
        ("I started working as a pilot", [("work", "I started working as a pilot")]),
        ("I've relocated to Berlin!", [("location", "I've relocated to Berlin")]),
        ("I got a new job!", [("i got new job", "I got a new job")]),  # not where
        # "and we …" says something of their household
        (
            "my girlfriend's name is mia and we have a cat called pixel",
            [
                ("girlfriend s name", "my girlfriend's name is mia"),
                ("we have cat called pixel", "we have a cat called pixel"),
            ],
        ),
    ],
)
def test_each_statement_and_its_subject(said: str, subjects: list[tuple[str, str]]) -> None:
    assert [(s.subject, s.sentence) for s in statements(said)] == subjects


def test_facts_of_the_four_kinds_take_names_and_jobs_said_other_ways() -> None:
    found = [(f.kind, f.value) for f in find_facts("Hi, I'm Marta and I work as a nurse.")]
    assert found == [("name", "Marta"), ("work", "a nurse")]
    # A summary shown on one line: the value ends at the next point.
    line = "- user said: I live in Porto - user said: I work at the harbour"
    assert [(f.kind, f.value) for f in find_facts(line)] == [
        ("location", "Porto"),
        ("work", "the harbour"),
    ]


def test_what_the_user_said_is_said_back_in_the_second_person() -> None:
    assert second_person("I work as a nurse at my sister's clinic") == (
        "You work as a nurse at your sister's clinic"
    )
    assert second_person("I am 34 years old") == "You are 34 years old"
    assert second_person("I'm allergic to peanuts") == "You're allergic to peanuts"
    assert second_person("i was born in Lisbon") == "You were born in Lisbon"
    assert second_person("My mum was a nurse") == "Your mum was a nurse"


def prompt(relevant: list[str], about: list[str], question: str) -> list:
    lines = [MEMORIES_SECTION]
    if relevant:
        lines += [RELEVANT, *(f"- User said: {m}" for m in relevant)]
    lines += ["About the user (facts and preferences):", *(f"- User said: {m}" for m in about)]
    return [SystemMessage("\n".join(lines)), HumanMessage(question)]


MEMORIES = [
    "I'm Marta",
    "I live in Porto",
    "I work as a nurse at the city hospital",
    "My sister Ana is getting married in June",
    "I'm allergic to peanuts",
    "I am 34 years old",
]


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("What's my name?", "Your name is Marta."),
        ("What is my full name?", "Your name is Marta."),
        ("Which city am I based in?", "You live in Porto."),  # not "the city hospital"
        ("Who is my employer?", "You work as a nurse at the city hospital."),
        ("What do I do for a living?", "You work as a nurse at the city hospital."),
        ("How old am I?", "You are 34 years old."),
        ("Who is getting married?", "You told me: My sister Ana is getting married in June"),
        ("What is the capital of Portugal?", "You said:"),  # one shared word is not enough
    ],
)
def test_a_question_is_answered_by_the_memory_that_answers_it(question: str, answer: str) -> None:
    # The memory found most relevant (by meaning) comes first in the prompt, but
    # the one that states what is asked about answers.
    relevant = ["I'm allergic to peanuts", *MEMORIES]
    assert answer in offline_reply(prompt(relevant, MEMORIES, question))


def test_a_thing_asked_about_as_known_is_what_they_told_of_it() -> None:
    told = ["My wife Giulia is expecting our first baby in March", "I'm moving to France soon"]
    reply = offline_reply(prompt(told, told, "When is the baby due?"))
    assert "You told me: My wife Giulia is expecting our first baby in March" in reply, reply
    # "the capital" is nothing of theirs: one shared word ("France") is not enough
    assert "You said:" in offline_reply(prompt(told, told, "What is the capital of France?"))
    told = ["My girlfriend and I are getting married next year", "I live in Rome"]
    reply = offline_reply(prompt(told, told, "When is the wedding?"))
    assert reply.endswith("You told me: My girlfriend and I are getting married next year"), reply


def test_a_pet_said_by_its_breed_is_their_pet() -> None:
    told = ["I've got a golden retriever named Sunny", "I'm a boxer", "My cat Luna is a tabby"]
    for question, answer in [
        ("what's my dog's name?", "You told me: I've got a golden retriever named Sunny"),
        (
            "Do I have any pets?",
            "You told me: I've got a golden retriever named Sunny; My cat Luna is a tabby",
        ),
    ]:
        reply = offline_reply(prompt([], told, question))
        assert reply.endswith(answer), (question, reply)


def test_a_name_typed_in_lower_case_after_a_greeting_of_its_own_is_their_name() -> None:
    """ "hey", then "im lucas": an introduction, as "hey im lucas" is; not after "ok"."""
    for opening, answer in [("hey", "Your name is Lucas."), ("ok", "I don't know that yet.")]:
        window = [HumanMessage(opening), AIMessage("Hello!"), HumanMessage("im lucas")]
        reply = offline_reply([*window, AIMessage("Noted."), HumanMessage("what is my name")])
        assert answer in reply, (opening, reply)


def test_the_family_they_live_with_answers_questions_about_them() -> None:
    told = ["I'm Sofia", "I live in Lisbon with my husband Pedro and our dog Bolt"]
    window = [HumanMessage(". ".join(told))]
    for question, answer in [
        ("Do you remember my name?", "Your name is Sofia."),
        ("Am I married?", "You told me: My husband is Pedro"),
        ("Tell me about my family", "You told me: My husband is Pedro"),
        ("what's my dog called?", "You told me: Our dog is Bolt"),
    ]:
        reply = offline_reply([*window, HumanMessage(question)])
        assert reply.endswith(answer), (question, reply)
    # all of them told of, for a question about them all
    told = ["My husband is Pedro", "I love surfing", "My brother Tom lives in Porto"]
    reply = offline_reply(prompt(told, told, "Tell me about my family"))
    assert reply.endswith("You told me: My husband is Pedro; My brother Tom lives in Porto"), reply


def test_a_guess_about_someone_of_theirs_speaks_of_them() -> None:
    # Recall ranks something first whatever is asked: not a guess about a daughter.
    relevant = ["I don't live in Bristol anymore", "My son Leo is 5"]
    reply = offline_reply(prompt(relevant, relevant, "How old is my daughter?"))
    assert reply.endswith("I don't know that yet. Tell me and I will remember it."), reply
    relevant = ["I don't live in Bristol anymore", "Lily, my daughter, turns 7 in May"]
    reply = offline_reply(prompt(relevant, relevant, "How old is my kid?"))
    assert reply.endswith("You told me: Lily, my daughter, turns 7 in May"), reply


def test_a_kind_of_fact_never_told_is_not_answered_by_another_memory() -> None:
    told = [m for m in MEMORIES if m not in ("I'm Marta", "I am 34 years old")]
    for question in ("What's my name?", "How old am I?"):
        reply = offline_reply(prompt(told, told, question))
        assert "I don't know that yet" in reply, reply


def test_a_paraphrase_sharing_no_word_takes_the_most_relevant_memory() -> None:
    relevant = ["My doctor is Dr. Hansen", "I play the cello"]
    reply = offline_reply(prompt(relevant, relevant, "Who is my physician?"))
    assert "You told me: My doctor is Dr. Hansen" in reply
    reply = offline_reply(prompt(relevant[::-1], relevant, "What instrument do I perform?"))
    assert "You told me: I play the cello" in reply


def test_a_guess_by_meaning_says_it_is_one() -> None:
    # Recall ranks something first whatever is asked: "What car do I drive?",
    # never told, gets the nearest memory, and the reply does not pass it off
    # as the answer; one sharing the question's words is said plainly.
    told = ["I have a dog called Biscuit", "I'm Priya"]
    reply = offline_reply(prompt(told, told, "What car do I drive?"))
    assert "You told me: I have a dog called Biscuit. (The closest thing I remember" in reply
    assert "found by meaning. If it is not what you asked, I don't know that yet" in reply
    reply = offline_reply(prompt(told, told, "Do I have a dog?"))
    assert reply.endswith("You told me: I have a dog called Biscuit"), reply


def test_asked_whether_they_have_one_only_a_thing_of_theirs_answers() -> None:
    # Recall by meaning ranked "I'm vegetarian" above the cat for "pets"; a
    # question whether they have something is answered by what they have.
    relevant = ["I'm vegetarian, so no meat recipes please", "We have a cat named Pixel"]
    for question in ("Do I have any pets?", "How many pets do I have?"):
        reply = offline_reply(prompt(relevant, relevant, question))
        assert "You told me: We have a cat named Pixel" in reply, (question, reply)


def test_a_question_starting_with_any_is_about_them() -> None:
    relevant = ["I'm vegetarian, so no meat recipes please", "I drive a Volvo"]
    reply = offline_reply(prompt(relevant, relevant, "Any dietary restrictions I have?"))
    assert "You told me: I'm vegetarian" in reply, reply


def test_a_word_that_ranks_a_thing_does_not_name_it() -> None:
    told = ["My favourite food is ramen", "My daughter is 9"]
    reply = offline_reply(prompt([], told, "What's my favourite colour?"))
    assert "I don't know that yet" in reply and "ramen" not in reply, reply
    assert offline_reply(prompt([], told, "What's my favourite food?")).endswith("is ramen")
    assert offline_reply(prompt([], told, "How old is my daughter?")).endswith("is 9")


def test_a_question_about_my_thing_takes_what_they_said_they_have() -> None:
    # "my pet": what they said they have answers, said either way, before a
    # "my …" memory ranked below it; a pet named by its kind ("dog", "puppy")
    # is found by the word, not guessed.
    for said in (
        "I have a dog called Biscuit",
        "I've got a dog called Biscuit",
        "We just adopted a puppy named Biscuit",
        "Our dog is called Biscuit",
    ):
        relevant = [said, "My doctor is Dr. Alves"]
        reply = offline_reply(prompt(relevant, relevant, "What is my pet called?"))
        assert reply.endswith(f"You told me: {said}"), reply
    relevant = ["I have been to Rome", "My dog is called Rex"]
    reply = offline_reply(prompt(relevant, relevant, "What is my pet called?"))
    assert reply.endswith("You told me: My dog is called Rex"), reply
    relevant = ["I have been to Rome", "I have a gecko called Zed"]  # no word for it: a guess
    reply = offline_reply(prompt(relevant, relevant, "What is my pet called?"))
    assert "You told me: I have a gecko called Zed. (The closest" in reply, reply
    # only a thing's name needs a thing of theirs: "my diet" is no thing they have
    relevant = ["I'm vegetarian", "My wife is called Elena"]
    reply = offline_reply(prompt(relevant, relevant, "What's my diet?"))
    assert "You told me: I'm vegetarian." in reply, reply


def test_work_said_another_way_is_a_guess_and_a_name_is_never_guessed() -> None:
    told = ["I'm a software engineer", "I have a dog called Biscuit"]
    reply = offline_reply(prompt(told, told, "What do I do for work?"))
    assert reply.endswith("You're a software engineer."), reply  # an occupation: their work
    told = ["I'm a night-shift person", "I have a dog called Biscuit"]
    reply = offline_reply(prompt(told, told, "What do I do for work?"))
    assert "You told me: I'm a night-shift person. (The closest thing" in reply, reply
    assert "I don't know that yet" in offline_reply(prompt(told, told, "What's my name?"))


def test_where_they_are_from_never_told_is_guessed_from_a_move() -> None:
    told = ["I moved to Toronto last year from Osaka", "I've been learning the guitar"]
    for question in ("Where did I grow up?", "Where am I from?"):
        reply = offline_reply(prompt(told[::-1], told, question))
        assert "You told me: I moved to Toronto last year from Osaka. (The closest" in reply
    told = ["I live in Toronto", "I've been learning the guitar"]
    assert "Toronto" not in offline_reply(prompt(told, told, "Where did I grow up?"))


def test_where_they_live_never_told_is_guessed_from_where_they_work() -> None:
    # Recall's nearest shares only the question's meaning ("based", "city")
    # with anything: the cats came first for "What city am I based in?".
    told = ["I have two cats, Miso and Tofu", "I work as a nurse in Leeds"]
    for question in ("What city am I based in?", "Where do I live?"):
        reply = offline_reply(prompt(told, told, question))
        assert "You told me: I work as a nurse in Leeds. (The closest thing" in reply, reply
    said = [HumanMessage("I work as a nurse in Leeds"), *prompt([], [], "Where do I live?")]
    reply = offline_reply([said[1], said[0], said[2]])  # said earlier in this thread
    assert "You told me: I work as a nurse in Leeds. (The closest thing" in reply, reply
    # a home told stands; work named with no place is no answer to where
    told = ["I work as a nurse in Leeds", "I live in York"]
    assert offline_reply(prompt(told, told, "Where do I live?")).endswith("You live in York.")
    told = ["I work at the hospital", "I have two cats, Miso and Tofu"]
    reply = offline_reply(prompt(told, told, "Which city am I based in?"))
    assert "hospital" not in reply, reply


def test_a_role_said_in_this_thread_is_the_guess_for_their_work() -> None:
    # A visitor (or a memory-off thread) has no memory recall ranked: what they
    # said here, "I'm a …", is the guess.
    thread = [HumanMessage("I'm a software wizard"), AIMessage("noted")]
    reply = offline_reply([*thread, HumanMessage("What's my job?")])
    assert "You told me: I'm a software wizard. (The closest thing" in reply, reply
    thread = [HumanMessage("I'm a primary school teacher in Glasgow"), AIMessage("noted")]
    reply = offline_reply([*thread, HumanMessage("What's my job?")])
    assert reply.endswith("You're a primary school teacher in Glasgow."), reply
    for said in ("I'm a vegetarian", "I'm a mother of two", "I'm a big fan of jazz"):
        thread = [HumanMessage(said), AIMessage("noted")]
        reply = offline_reply([*thread, HumanMessage("What do I do for work?")])
        assert "I don't know that yet" in reply, (said, reply)
    # in a later thread, the role remembered is the guess, asked however briefly
    told = ["I'm Alex", "i really enjoy bouldering", "i'm a code wrangler in berlin"]
    for asked in ("what do i do?", "What's my job?"):
        reply = offline_reply(prompt(told[:2], told, asked))
        assert "You told me: i'm a code wrangler in berlin. (The closest" in reply, reply


def test_a_name_asked_of_something_else_is_not_the_users_name() -> None:
    told = ["My name is Theo", "My dog is called Rex", "I love hiking"]
    reply = offline_reply(prompt(told, told, "What's my dog's name?"))
    assert "You told me: My dog is called Rex" in reply, reply
    reply = offline_reply(prompt(told, told, "What are my hobbies?"))
    assert "You love hiking." in reply, reply


def test_a_paraphrase_is_not_answered_by_a_fact_of_another_kind() -> None:
    # Recall ranks something first whatever is asked: after "forget my dog",
    # the name is not an answer to what the dog is called.
    told = ["My name is Theo", "I live in Hamburg", "I love hiking"]
    reply = offline_reply(prompt(told, told, "What's my dog called?"))
    assert "I don't know that yet" in reply, reply


def test_the_latest_statement_of_a_kind_answers() -> None:
    # In this thread: the move told just now; across threads: the superseding
    # memory, not a past conversation's summary that still says Berlin.
    messages = prompt([], ["I live in Berlin"], "")[:1] + [
        HumanMessage("I live in Berlin."),
        HumanMessage("Actually I moved to Hamburg last month."),
        HumanMessage("Where do I live now?"),
    ]
    assert "You moved to Hamburg last month." in offline_reply(messages)
    system = "\n".join(
        [
            MEMORIES_SECTION,
            "About the user (facts and preferences):",
            "- User said: I moved to Hamburg last month",
            "Past conversations:",
            "- Conversation “Hi”: - user said: I live in Berlin",
        ]
    )
    reply = offline_reply([SystemMessage(system), HumanMessage("Where do I live now?")])
    assert "You moved to Hamburg last month." in reply


@pytest.mark.parametrize(
    "older",
    [
        "I'm 30 now",
        "I just turned 30",
        "I am now 30",
        "Actually I'm 30 now, I just had my birthday",
    ],
)
def test_an_age_said_again_is_their_age_now(older: str) -> None:
    messages = [HumanMessage("Hi, my name is Aisha and I'm 29"), HumanMessage(older)]
    reply = offline_reply([*messages, HumanMessage("how old am I?")])
    assert "30" in reply and "29" not in reply, reply


def test_of_two_memories_naming_a_thing_the_one_about_it_answers() -> None:
    told = ["I just had my birthday", "My birthday is on the 14th of July"]
    for memories in (told, told[::-1]):
        reply = offline_reply(prompt(memories, memories, "when's my birthday?"))
        assert "the 14th of July" in reply, reply


@pytest.mark.parametrize(
    "asked",
    [
        "Tell me everything you know about me.",
        "What else do you remember about me?",
        "what have you learned about me so far",
        "What did I tell you about myself?",
        "Do you know anything about me?",
        "What do you know of me?",
        "tell me something about me",
        "Can you tell me a bit about myself?",
    ],
)
def test_what_it_knows_about_the_user_is_asked_many_ways(asked: str) -> None:
    assert offline_reply(prompt([], MEMORIES[:2], asked)).endswith(
        "You told me: I'm Marta; I live in Porto."
    )


def test_a_move_said_after_when_it_was_replaces_the_home_before() -> None:
    said = [HumanMessage("I live in Pune."), HumanMessage("Last week I moved to Bangalore.")]
    reply = offline_reply([*said, HumanMessage("Where do I live now?")])
    assert reply.endswith("You moved to Bangalore last week."), reply


def test_a_name_said_after_what_it_names_answers() -> None:
    said = [HumanMessage("I have a dog. His name is Rex."), HumanMessage("What's my dog's name?")]
    assert offline_reply(said).endswith("You told me: I have a dog; his name is Rex")


def test_a_spouse_is_who_they_said_they_are_married_to() -> None:
    told = ["I have two daughters, Mia and Zoe", "I'm married to Anna", "I drink tea"]
    for asked in ("What's my wife's name?", "Who is my husband?", "Who's my spouse?"):
        assert offline_reply(prompt(told, told, asked)).endswith(
            "You told me: I'm married to Anna"
        ), asked


def test_a_name_typed_in_lower_case_is_said_back_capitalised() -> None:
    told = ["my name is john smith, nice to meet you", "I'm married to Anna"]
    assert "Your name is John Smith." in offline_reply(prompt([], told, "What's my name?"))
    told = ["My name is Ursula von der Leyen"]  # as they wrote it
    assert "Your name is Ursula von der Leyen." in offline_reply(prompt([], told, "Who am I?"))


def test_what_it_knows_about_someone_else_is_not_all_it_knows() -> None:
    told = ["I'm Marta", "My sister Ana is getting married in June"]
    reply = offline_reply(prompt(told[1:], told, "What do you know about my sister?"))
    assert reply.endswith("You told me: My sister Ana is getting married in June"), reply


def test_what_it_knows_about_the_user_is_listed() -> None:
    reply = offline_reply(prompt([], MEMORIES[:2], "What do you know about me?"))
    assert "You told me: I'm Marta; I live in Porto." in reply
    # Everything loaded, who and where first (the relevant ones come first in
    # the prompt, but a name told a while ago is not left out), each once.
    reply = offline_reply(prompt(MEMORIES[2:5], MEMORIES, "What do you know about me?"))
    assert reply.endswith(
        "You told me: I'm Marta; I live in Porto; I work as a nurse at the city hospital; "
        "I am 34 years old; My sister Ana is getting married in June; I'm allergic to peanuts."
    )
    many = [f"My friend number {n} is called Friend{n}" for n in range(20)]
    reply = offline_reply(prompt([], many, "What do you know about me?"))
    assert reply.count("My friend number") == 12 and reply.endswith("; and 8 more things.")
    assert "I don't know anything about you yet" in offline_reply(
        [HumanMessage("What do you know about me?")]
    )
    # what was said earlier in this thread counts too (a visitor has no memories)
    window = [HumanMessage("hi im Lee, 40, from Busan"), HumanMessage("I like jazz.")]
    reply = offline_reply([*window, HumanMessage("What do you know about me?")])
    assert reply.endswith("You told me: I'm Lee; I'm from Busan; I'm 40; I like jazz."), reply
    # a home said now stands for the one saved before (its save is after the turn)
    moved = [
        HumanMessage("Actually we moved to Hamburg last week."),
        HumanMessage("What do you know about me?"),
    ]
    reply = offline_reply(prompt([], ["I'm Lee", "I live in Berlin"], "")[:1] + moved)
    assert reply.endswith("You told me: I'm Lee; we moved to Hamburg last week."), reply


@pytest.mark.parametrize(
    ("said", "subjects"),
    [
        # what their household has and does ("we"/"our"), as typed in a hurry ("Im")
        (
            "We just adopted a puppy named Max.",
            [("we adopted puppy named max", "We just adopted a puppy named Max")],
        ),
        ("Our cat is called Pixel.", [("cat", "Our cat is called Pixel")]),
        ("we moved to Leeds in May", [("location", "we moved to Leeds in May")]),
        ("Im 35", [("age", "I'm 35")]),
        ("We should talk about it later.", []),  # says nothing of them
        ("Our conversation yesterday was helpful.", []),
        ("My question is about sorting lists.", []),
        ("Imagine that!", []),
        # a change in their life said without "I"; chat's "Got it" and the like are not
        ("Just moved to Bristol!", [("location", "I just moved to Bristol")]),
        (
            "Started a new job at Arup last week.",
            [("work", "I started a new job at Arup last week")],
        ),
        ("Got married in June", [("i got married in june", "I got married in June")]),
        ("Got it, thanks", []),
        ("Got a question", []),
        ("Moved on to the next topic", []),
        # who they live or work with is kept apart from the home or job, which
        # a later one replaces
        (
            "I live in Bristol with my partner Alex.",
            [
                ("location", "I live in Bristol with my partner Alex"),
                ("partner", "My partner is Alex"),
            ],
        ),
        ("I go running with my dog", [("i go running with my dog", "I go running with my dog")]),
    ],
)
def test_statements_of_the_household_and_in_a_hurry(
    said: str, subjects: list[tuple[str, str]]
) -> None:
    assert [(s.subject, s.sentence) for s in statements(said)] == subjects


def test_an_introduction_in_one_breath_answers_each_question() -> None:
    told = [
        st.sentence
        for said in (
            "hey! im Kim, 28, from Seoul but living in Berlin now",
            "I'm a designer at Zalando",
        )
        for st in statements(said)
    ]
    for question, reply in [
        ("What's my name?", "Your name is Kim."),
        ("How old am I?", "You're 28."),
        ("Where am I from?", "You're from Seoul."),
        ("Where do I live?", "You're living in Berlin now."),
        ("What is my job?", "You're a designer at Zalando."),
    ]:
        assert offline_reply(prompt([], told, question)).endswith(reply), question


def test_what_their_household_has_is_said_back_to_them() -> None:
    told = ["Our cat is called Pixel", "we moved to Leeds in May", "I'm 35"]
    for question, reply in [
        ("What is our cat called?", "You told me: Our cat is called Pixel"),
        ("What's my cat called?", "You told me: Our cat is called Pixel"),
        ("Where do I live?", "You moved to Leeds in May."),
        ("Where do we live?", "You moved to Leeds in May."),
        ("How old am I?", "You're 35."),
    ]:
        assert offline_reply(prompt([], told, question)).endswith(reply), question
    moved = ["I moved to Bath last week", "My partner is Alex"]  # Bristol superseded
    assert offline_reply(prompt([], moved, "Who is my partner?")).endswith("My partner is Alex")
    said = offline_reply([HumanMessage("I live in Bristol with my partner Alex.")])
    assert said.endswith("(location: Bristol with my partner Alex).")  # not said twice
    said = offline_reply([HumanMessage("I'm Priya, 34, now based in Leeds with my husband Dev.")])
    assert said.endswith("(name: Priya; I'm 34; I'm based in Leeds with my husband Dev).")
    said = offline_reply([HumanMessage("I play tennis. I play tennis.")])
    assert said.endswith("Thanks, I'll remember that: I play tennis.")  # once, not none
    # "we" is as often the user and the assistant: not a question about them
    assert "You told me" not in offline_reply(prompt(told, told, "Can we talk about cats?"))


def test_a_visitor_asking_to_remember_is_remembered_in_the_thread() -> None:
    # No memory tools for a visitor (or with memory off): the request is still
    # what they said, for this conversation, and answers later questions.
    for asked in ("Remember that my mum is Ann.", "Can you remember that my mum is Ann?"):
        assert [st.sentence for st in statements(asked)] == ["my mum is Ann"]
        reply = offline_reply([HumanMessage(asked)])
        assert reply.endswith("I'll remember that in this conversation: my mum is Ann."), reply
        later = offline_reply([HumanMessage(asked), HumanMessage("Who is my mum?")])
        assert later.endswith("You told me: my mum is Ann"), later


def test_what_they_like_is_everything_they_like() -> None:
    told = ["I love hiking", "I hate mushrooms", "I prefer tea over coffee", "My cat is Tom"]
    reply = offline_reply(prompt([], told, "What do I like?"))
    assert reply.endswith("You love hiking. You prefer tea over coffee."), reply
    assert "I don't know that yet" in offline_reply(prompt([], told[1:2], "What do I like?"))


@pytest.mark.parametrize(
    "asked",
    [
        "What don't I like?",
        "What do I hate?",
        "what do i dislike",
        "Is there anything I don't like?",
    ],
)
def test_what_they_dislike_is_everything_they_said_they_do_not_like(asked: str) -> None:
    told = ["I love hiking", "I hate running", "I don't like coffee", "I can't stand mushrooms"]
    reply = offline_reply(prompt([], told, asked))
    assert reply.endswith("You hate running. You don't like coffee. You can't stand mushrooms."), (
        reply
    )
    assert offline_reply(prompt([], told, "What do I like?")).endswith("You love hiking.")


def test_what_they_like_of_a_thing_is_what_they_like_of_it() -> None:
    told = ["I love hiking", "I enjoy eating sushi", "My favourite food is pierogi"]
    assert offline_reply(prompt([], told, "What do I like to eat?")).endswith(
        "You enjoy eating sushi."
    )
    # Nothing they like names it: not "You like to eat." (the question read as
    # a statement), nor "You love hiking.", but recall's nearest, as a guess.
    reply = offline_reply(prompt(told[2:], told[::2], "What do I like to eat?"))
    assert "You told me: My favourite food is pierogi. (The closest" in reply, reply
    assert offline_reply(prompt([], told[:1], "What do I like to eat?")).endswith(
        "I don't know that yet. Tell me and I will remember it."
    )
    assert offline_reply(prompt([], told, "What do I love doing?")).endswith(
        "You love hiking. You enjoy eating sushi."
    )


@pytest.mark.parametrize(
    "asked", ["What do I like to eat?", "Where did we live in 2019?", "do i work at Google"]
)
def test_a_question_states_no_fact(asked: str) -> None:
    assert find_facts(asked) == []
    assert [f.value for f in find_facts("Could you call me Annie?")] == ["Annie"]


def test_what_it_cannot_read_is_said_with_what_it_can() -> None:
    # Statements are read in English only: one in another language is not
    # "remembered", and the reply says what it can read.
    reply = offline_reply([HumanMessage("Ich heiße Jonas und wohne in Köln.")])
    assert "Thanks" not in reply and "about yourself in English" in reply, reply


def test_a_statement_of_any_kind_is_acknowledged() -> None:
    reply = offline_reply([HumanMessage("I'm allergic to peanuts.")])
    assert "Thanks, I'll remember that: I'm allergic to peanuts." in reply
    reply = offline_reply([HumanMessage("Hi, I'm Marta and I live in Porto.")])
    assert "Thanks, I'll remember that (name: Marta; location: Porto)." in reply


def test_what_the_patterns_read_is_squeezed_of_long_runs_of_blank_space() -> None:
    # A message of 32,000 spaces made each pattern try every split of the run
    # (12 s of the event loop's time for one message): they read runs of blank
    # space as one space, or as one line end when the run holds one.
    said = "I live in" + " " * 31_000 + "Porto"
    assert [(f.kind, f.value, f.sentence) for f in find_facts(said)] == [
        ("location", "Porto", "I live in Porto")
    ]
    assert [
        s.sentence for s in statements("I work as a nurse" + " \n " * 10_000 + "I like tea")
    ] == [
        "I work as a nurse",
        "I like tea",
    ]
    assert "You live in Porto." in offline_reply(
        [HumanMessage(said), HumanMessage("Where do I live?")]
    )


def test_the_offline_summary_keeps_every_statement_and_what_was_asked() -> None:
    summary = fold_facts(
        "",
        [
            ("user", "Hi, I'm Priya. My doctor is Dr. Alves. I have a dog called Biscuit."),
            ("assistant", "Thanks, I'll remember that."),
            ("user", "Which trains go to Porto?"),
            ("user", "Where do I live?"),  # recall, not a topic
            ("user", "What do you know about me?"),
            ("user", "Remember that my mum's birthday is on 3 March."),
            ("user", "Please remember: the boiler service is due in May"),
        ],
    )
    assert summary.splitlines() == [
        "- user said: I'm Priya",
        "- user said: My doctor is Dr. Alves",
        "- user said: I have a dog called Biscuit",
        "- user said: my mum's birthday is on 3 March",
        "- user said: the boiler service is due in May",
        "- user asked: Which trains go to Porto?",
    ]


def test_a_name_and_what_to_call_them_are_both_said_back() -> None:
    told = ["My name is Ana", "call me Annie"]
    reply = offline_reply(prompt(told, told, "What's my name?"))
    assert reply.endswith("Your name is Ana. You asked me to call you Annie."), reply
    reply = offline_reply(prompt(told[1:], told[1:], "What's my name?"))
    assert reply.endswith("Your name is Annie."), reply
    window = [
        HumanMessage("My name is Ana."),
        HumanMessage("Call me Annie."),
        HumanMessage("Who am I?"),
    ]
    reply = offline_reply(prompt([], [], "")[:1] + window)
    assert reply.endswith("Your name is Ana. You asked me to call you Annie."), reply


def test_what_was_said_earlier_in_the_thread_answers_with_no_memories() -> None:
    # A visitor has no long-term memories: their thread's window is what they told.
    first = HumanMessage("Hi, I'm Zoe and I live in Oslo. My dog is called Rex.")
    reply = offline_reply([first])
    assert reply.endswith("(name: Zoe; location: Oslo; My dog is called Rex)."), reply
    later = [HumanMessage("My dog is called Bo now."), HumanMessage("What's my dog called?")]
    assert offline_reply([first, *later]).endswith("You told me: My dog is called Bo now")
    assert "I don't know that yet" in offline_reply([first, HumanMessage("Who is my boss?")])


def test_a_word_between_i_and_the_verb_keeps_the_subject() -> None:
    # "I now work for …" supersedes "I work at …" (one subject, the later holds).
    said = ["I now work for a startup called Nimbus.", "I'm currently living in Lisbon."]
    found = [(s.subject, s.sentence) for text in said for s in statements(text)]
    assert found == [
        ("work", "I now work for a startup called Nimbus"),
        ("location", "I'm currently living in Lisbon"),
    ]


def test_a_thread_that_only_asked_what_it_was_told_is_not_worth_a_summary() -> None:
    recall = ["Where do I live?", "What do you know about me?", "Forget that I play tennis."]
    assert not worth_keeping(recall * 3, [])
    assert worth_keeping(["Which trains go from Porto to Lisbon on Sunday mornings, and when?"], [])


def test_statements_after_a_comma_and_asked_for_by_tell_me() -> None:
    said = "I'm Kenji, I'm 29 and I work remotely from Kyoto as a designer."
    assert [(s.subject, s.sentence) for s in statements(said)] == [
        ("name", "I'm Kenji"),
        ("age", "I'm 29"),
        ("work", "I work remotely from Kyoto as a designer"),
    ]
    told = ["I'm Kenji", "I'm 29", "I live in Kyoto"]
    assert offline_reply(prompt(told, told, "Tell me my name again")).endswith("Kenji.")
    assert offline_reply(prompt(told, told, "What's my age?")).endswith("You're 29.")
    assert offline_reply(prompt(told, told, "Remind me where I live")).endswith("Kyoto.")


def test_who_is_someone_they_named_is_answered_by_what_they_said_of_them() -> None:
    told = [
        "My partner's name is Sam",
        "My sister Anna lives in Rome",
        "Meera is a doctor",
        "I have two kids, Mia and Leo; Mia is 7 and Leo is 4",
    ]
    for question, answer in [
        ("Who is Sam?", "My partner's name is Sam"),
        ("who's anna", "My sister Anna lives in Rome"),
        ("Who is Meera?", "Meera is a doctor"),
        ("How old is Leo?", "I have two kids, Mia and Leo; Mia is 7 and Leo is 4"),
        ("What does Meera do?", "Meera is a doctor"),
    ]:
        assert offline_reply(prompt(told, told, question)).endswith(f"You told me: {answer}")
    for question in ("Who is Bob?", "Who is the mayor of Rome?", "Who are you?", "Is Rome nice?"):
        reply = offline_reply(prompt(told, told, question))
        assert "You told me" not in reply, (question, reply)


def test_a_sentence_about_someone_they_named_before_is_kept() -> None:
    """ "Leo is 7 and Mia is 4", a message after "We've got two kids, Leo and
    Mia": about people they named, so theirs to remember; "Paris is lovely"
    names no one of theirs. Saved in a later save than the naming, the
    thread's summary says who was named."""
    turns = [
        ("user", "We've got two kids, Leo and Mia."),
        ("assistant", "Thanks."),
        ("user", "Leo is 7 and Mia is 4."),
        ("user", "Paris is lovely. Mia has a cold."),
    ]
    said = [draft.content for draft in learn_by_pattern("", turns).drafts]
    assert said == [
        "User said: We've got two kids, Leo and Mia",
        "User said: Leo is 7 and Mia is 4",
        "User said: Mia has a cold",
    ]
    summary = learn_by_pattern("", turns[:2]).summary or ""
    later = learn_by_pattern(summary, turns[2:])
    assert [d.content for d in later.drafts] == said[1:]
    assert (later.summary or "").splitlines()[-2:] == [
        "- user said: Leo is 7 and Mia is 4",
        "- user said: Mia has a cold",
    ]
    assert [d.content for d in learn_by_pattern("", turns[2:]).drafts] == []

    # In the thread: acknowledged, and answered (a visitor has no memories).
    window = [HumanMessage(text) for role, text in turns[:3] if role == "user"]
    assert offline_reply(window).endswith("Thanks, I'll remember that: Leo is 7 and Mia is 4.")
    asked = offline_reply([*window, HumanMessage("How old is Leo?")])
    assert asked.endswith("You told me: Leo is 7 and Mia is 4"), asked
    # Named in a memory of an earlier thread.
    memory = prompt([], ["We've got two kids, Leo and Mia"], "Leo is 7 and Mia is 4.")
    assert offline_reply(memory).endswith("I'll remember that: Leo is 7 and Mia is 4.")


@pytest.mark.parametrize(
    ("change", "answer"),
    [
        ("I quit Microsoft and joined Amazon", "You quit Microsoft and joined Amazon."),
        ("I left Microsoft and started at Amazon", "You left Microsoft and started at Amazon."),
        ("I quit my job as a nurse, now I'm a pilot", "now you're a pilot."),
        ("I joined Amazon as an engineer", "You joined Amazon as an engineer."),
        ("I left Airbus, now I work for Rolls-Royce", "now you work for Rolls-Royce."),
    ],
)
def test_a_change_of_job_is_where_they_work_now(change: str, answer: str) -> None:
    [said] = statements(change)
    assert said.subject == "work"
    window = [HumanMessage("I work at Microsoft as a program manager"), HumanMessage(change)]
    reply = offline_reply([*window, HumanMessage("Where do I work?")])
    assert reply.endswith(answer), reply


def test_quitting_something_else_is_no_job() -> None:
    for said in ("I quit smoking and joined a gym", "I left Oslo and now I'm a bit lost"):
        assert all(st.subject != "work" for st in statements(said)), said


CASUAL = [
    "I'm Jordan",  # "hey im jordan", as it is saved
    "my girlfriend is called emma",
    "i have 2 dogs named max and bella",
    "my favorite food is pizza",
    "i'm learning spanish",
    "my sister lives in vancouver",
]


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("whats my name", "Your name is Jordan."),
        ("who is emma", "You told me: my girlfriend is called emma"),
        ("whos emma", "You told me: my girlfriend is called emma"),
        ("what are my dogs names", "You told me: i have 2 dogs named max and bella"),
        ("whats my favorite food", "You told me: my favorite food is pizza"),
        ("what language am i learning", "You told me: i'm learning spanish"),
        ("where does my sister live", "You told me: my sister lives in vancouver"),
        ("What’s my favorite food?", "You told me: my favorite food is pizza"),
        ("do u know my name", "Your name is Jordan."),  # typed as it sounds
        ("what r my dogs names", "You told me: i have 2 dogs named max and bella"),
        (  # two questions in one
            "whats my name and where does my sister live",
            "Your name is Jordan. You told me: my sister lives in vancouver",
        ),
    ],
)
def test_a_question_typed_in_a_hurry_is_answered(question: str, answer: str) -> None:
    """No question mark, no apostrophe, all lower case: asked all the same."""
    reply = offline_reply(prompt([], CASUAL, question))
    assert reply.endswith(answer), reply


def test_a_feeling_asked_about_is_no_subject() -> None:
    """ "What music do I like?" is about music: "I like to eat jollof rice"
    shares only the feeling. Recall by meaning ranks the answer first; with
    nothing found by meaning (a database without vectors), a memory of the
    same feeling is the guess, said as one."""
    told = ["I like to eat jollof rice", "I listen to a lot of jazz", "I can't stand olives"]
    by_meaning = prompt(told[1:2], told, "What music do I like?")
    assert "You told me: I listen to a lot of jazz. (The closest" in offline_reply(by_meaning)
    assert offline_reply(prompt([], told, "Do I like olives?")).endswith(
        "You told me: I can't stand olives"
    )
    reply = offline_reply(prompt([], ["I love sushi", "I live in Oslo"], "What food do I love?"))
    assert "You told me: I love sushi. (The closest thing I remember" in reply


def test_a_message_going_on_about_someone_is_kept_with_them() -> None:
    """ "She's a nurse", a message after "I live in Leeds with my girlfriend
    Sarah": kept with what it goes on about, so a new thread knows who is a
    nurse; it supersedes the statement it extends (one memory per subject).
    After something said of the user themselves, "she" names no one."""
    turns = [
        ("user", "i live in leeds with my girlfriend sarah"),
        ("assistant", "Thanks."),
        ("user", "she's a nurse"),
        ("user", "She loves cats."),
    ]
    drafts = learn_by_pattern("", turns).drafts
    extended = "My girlfriend sarah; she's a nurse; she loves cats"
    assert [(d.key, d.content) for d in drafts][-1] == (
        "my girlfriend sarah",
        f"User said: {extended}",
    )
    assert {d.key for d in drafts} == {"location", "my girlfriend sarah"}
    # Saved in two saves: the thread's summary says what was said last.
    summary = learn_by_pattern("", turns[:2]).summary or ""
    later = learn_by_pattern(summary, turns[2:3]).drafts
    assert [d.content for d in later] == ["User said: My girlfriend sarah; she's a nurse"]
    # In the thread: acknowledged with whom it is about.
    window = [HumanMessage(text) for role, text in turns[:3] if role == "user"]
    assert offline_reply(window).endswith(
        "Thanks, I'll remember that: My girlfriend sarah; she's a nurse."
    )
    # In a new thread.
    memory = prompt([], ["i live in leeds", extended], "What does my girlfriend do?")
    assert offline_reply(memory).endswith(f"You told me: {extended}")
    for before in ("I live in Oslo", "I love pizza", "I'm allergic to peanuts"):
        said = learn_by_pattern("", [("user", before), ("user", "She is a doctor")]).drafts
        assert [d.content for d in said] == [f"User said: {before}"], before


def test_a_move_of_the_household_is_where_they_live_and_lived() -> None:
    """ "We just moved to Toronto from Mumbai": where they live now, and where
    they lived before; "I used to live in London" says the second alone."""
    [said] = statements("We just moved to Toronto from Mumbai.")
    assert said.subject == "location"
    told = ["We just moved to Toronto from Mumbai", "I speak Hindi and English"]
    for question, answer in [
        ("Where do we live?", "You just moved to Toronto from Mumbai."),
        ("Where did I live before?", "You just moved to Toronto from Mumbai."),
        ("where did we move from", "You just moved to Toronto from Mumbai."),
    ]:
        reply = offline_reply(prompt(told[1:], told, question))
        assert reply.endswith(answer), (question, reply)
    used_to = ["I used to live in London", "I live in Leeds", "I've lived in Leeds for years"]
    reply = offline_reply(prompt([], used_to[1:] + used_to[:1], "Where did I use to live?"))
    assert reply.endswith("You used to live in London."), reply
    assert "don't know" in offline_reply(prompt([], used_to[1:], "Where did I live before?"))
    left = ["I don't live in Bristol anymore", "I moved to Leeds last month"]
    reply = offline_reply(prompt([], left, "Where did I live before?"))
    assert reply.endswith("You don't live in Bristol anymore."), reply


def test_what_the_household_is_about_to_do_is_kept_and_asked_with_we() -> None:
    said = "We're going to Portugal in August for two weeks."
    assert offline_reply([HumanMessage(said)]).endswith(f"I'll remember that: {said}")
    reply = offline_reply([HumanMessage(said), HumanMessage("Where are we going on holiday?")])
    assert reply.endswith(f"You told me: {said[:-1]}"), reply
    for aside in ("We are going to talk about it later", "We're getting close", "We're done"):
        assert "You said:" in offline_reply([HumanMessage(aside)]), aside


def test_what_the_household_has_is_asked_with_we() -> None:
    """ "How many dogs do we have?" asks about them; "Can we talk about
    something else?" does not."""
    told = ["we have two dogs, rex and bella", "I live in Leeds"]
    reply = offline_reply(prompt(told[:1], told, "How many dogs do we have?"))
    assert reply.endswith("You told me: we have two dogs, rex and bella"), reply
    reply = offline_reply(prompt(told[:1], told, "Can we talk about something else?"))
    assert "You told me" not in reply, reply


def test_a_request_for_something_is_not_a_question_about_them() -> None:
    """ "Can you suggest a dinner recipe for me?" asks for something: recall
    ranks a memory first whatever is asked ("I don't eat meat"), and it is no
    answer. "Can you tell me my name?" is a question about them."""
    told = ["I don't eat meat", "I'm Priya"]
    reply = offline_reply(prompt(told[:1], told, "Can you suggest a dinner recipe for me?"))
    assert "You told me" not in reply and "built-in offline model" in reply, reply
    assert offline_reply(prompt([], told, "Can you tell me my name?")).endswith(
        "Your name is Priya."
    )


def test_the_name_they_go_by_is_said_with_their_name() -> None:
    """ "My name is Alexander but everyone calls me Alex": two things, both
    said back, and "What do people call me?" asks for them."""
    said = statements("My name is Alexander but everyone calls me Alex")
    assert [st.subject for st in said] == ["name", "preferred name"]
    told = ["My name is Alexander", "everyone calls me Alex", "I have a son named Eli"]
    for question in ("What do people call me?", "What's my name?", "what do i go by"):
        reply = offline_reply(prompt(told[2:], told, question))
        assert reply.endswith("Your name is Alexander. Everyone calls you Alex."), reply
    reply = offline_reply(prompt([], ["I'm Sasha", "my friends call me Sash"], "Who am I?"))
    assert reply.endswith("Your name is Sasha. Your friends call you Sash."), reply
    # Not a name: what someone else does to them.
    assert [st.subject for st in statements("My boss calls me every day")] != ["preferred name"]


def test_a_liking_is_no_thing_they_have() -> None:
    """ "Do I have a dog?", the dog forgotten: recall ranks something first by
    meaning ("My favourite food is now ramen"), which is no pet of theirs."""
    told = ["My favourite food is now ramen", "I live in Lyon"]
    for question in ("Do I have a dog?", "What's my pet called?"):
        reply = offline_reply(prompt(told[:1], told, question))
        assert reply.endswith("I don't know that yet. Tell me and I will remember it."), reply
    reply = offline_reply(prompt(["My dog Milo is 3"], ["My dog Milo is 3"], "Do I have a dog?"))
    assert "You told me: My dog Milo is 3" in reply, reply


def test_what_they_said_of_someone_answers_before_what_names_them() -> None:
    """ "What does Tom do?": "Tom is a teacher", not "I have a brother, Tom,
    who lives in Cork", which only names him; "Who is Tom?" is the brother."""
    told = ["I have a brother, Tom, who lives in Cork", "Tom is a teacher"]
    for question, answer in [
        ("What does Tom do?", "Tom is a teacher"),
        ("Is Tom married?", "Tom is a teacher"),  # all that is known of him
        ("Who is Tom?", "I have a brother, Tom, who lives in Cork"),
        ("Where does my brother live?", "I have a brother, Tom, who lives in Cork"),
    ]:
        reply = offline_reply(prompt(told, told, question))
        assert reply.endswith(f"You told me: {answer}"), (question, reply)


def test_a_name_put_right_replaces_the_one_given() -> None:
    """ "No wait, it's John with an h", after "My name is Jon": their name is
    John, in the thread and saved (under the name's subject, so it supersedes);
    "No, it's fine" puts nothing right."""
    window = [HumanMessage("My name is Jon"), HumanMessage("No wait, it's John with an h")]
    assert offline_reply(window).endswith("Thanks, I'll remember that: My name is John.")
    assert offline_reply([*window, HumanMessage("whats my name")]).endswith("Your name is John.")
    turns = [("user", "My name is Jon"), ("user", "No wait, it's John with an h")]
    saved = learn_by_pattern("", turns).drafts
    assert [(d.key, d.content) for d in saved][-1] == ("name", "User said: My name is John")
    for not_a_name in ("No, it's fine", "no its fine", "It's raining"):
        said = learn_by_pattern("", [("user", "My name is Jon"), ("user", not_a_name)]).drafts
        assert [d.content for d in said] == ["User said: My name is Jon"], not_a_name


def test_small_talk_is_answered_as_such_and_by_name() -> None:
    """ "Hi", "thanks", "bye": answered as what they are (not with "You said: …"),
    by the name they gave when it is known (their memories, or this thread)."""
    assert offline_reply([HumanMessage("hi")]).startswith(
        "[offline model] Hello! I am Threadline's built-in offline model"
    )
    known = ["My name is Annabel", "Call me Annie", "I live in Oslo"]
    for said, answer in [
        ("Hello there, how are you?", "Hello, Annie! I am Threadline's"),
        ("thank you so much!", "You're welcome, Annie!"),
        ("ok bye", "Goodbye, Annie!"),
    ]:
        reply = offline_reply(prompt([], known, said))
        assert reply.startswith(f"[offline model] {answer}"), (said, reply)
    window = [HumanMessage("hi im tom"), HumanMessage("thanks")]
    assert offline_reply(window) == "[offline model] You're welcome, Tom!"
    # Not small talk: said with something else.
    assert "Hello" not in offline_reply([HumanMessage("hello, where do I live?")])


def test_a_question_that_says_something_too_has_both_answered() -> None:
    """ "I live in Rome. Where do I work?": what they said is acknowledged (and
    saved, as any statement is), and the question answered."""
    reply = offline_reply([HumanMessage("I live in Rome. Where do I work?")])
    assert reply == (
        "[offline model] Thanks, I'll remember that: I live in Rome. "
        "I don't know that yet. Tell me and I will remember it."
    )
    reply = offline_reply([HumanMessage("I work at Ferrari. Where do I work?")])
    assert reply == (
        "[offline model] Thanks, I'll remember that: I work at Ferrari. You work at Ferrari."
    )
    saved = learn_by_pattern("", [("user", "I live in Rome. Where do I work?")]).drafts
    assert [d.content for d in saved] == ["User said: I live in Rome"]


def test_which_country_they_are_from_is_where_they_are_from() -> None:
    """ "What country am I from?" asks where they are from, not where they live."""
    told = ["I live in Oslo", "I was born in Kenya"]
    for question, answer in [
        ("What country am I from?", "You were born in Kenya."),
        ("which city am i originally from", "You were born in Kenya."),
        ("What country do I live in?", "You live in Oslo."),
    ]:
        reply = offline_reply(prompt([], told, question))
        assert reply.endswith(answer), (question, reply)


def test_two_of_them_said_as_one_subject_stay_one_statement() -> None:
    """ "My girlfriend and I are getting married next year" is one statement
    (not "My girlfriend" and "I are …"), and "Who am I getting married to?"
    is no question for their name."""
    said = statements("My girlfriend and I are getting married next year")
    assert [st.sentence for st in said] == ["My girlfriend and I are getting married next year"]
    told = ["My girlfriend and I are getting married next year; her name is Chloe", "I'm Sam"]
    reply = offline_reply(prompt(told, told, "Who am I getting married to?"))
    assert reply.endswith(f"You told me: {told[0]}"), reply
    assert offline_reply(prompt([], told, "Who am I?")).endswith("Your name is Sam.")


def test_hobbies_said_in_other_words_answer() -> None:
    """ "My hobbies are chess and climbing" answers "What are my hobbies?",
    in this thread and from a memory, though it says no "I like"."""
    window = [
        HumanMessage("My hobbies are chess and climbing"),
        HumanMessage("what are my hobbies"),
    ]
    assert offline_reply(window).endswith("You told me: My hobbies are chess and climbing")
    told = ["I live in Oslo", "My hobbies are chess and climbing"]
    reply = offline_reply(prompt([], told, "What are my hobbies?"))
    assert reply.endswith("You told me: My hobbies are chess and climbing"), reply


def test_an_introduction_under_a_label_is_read_all_the_same() -> None:
    """ "About me: I'm Lena, 34, a nurse in Vienna." lost its name, age and
    role to the label before them."""
    said = statements("About me: I'm Lena, 34, a nurse in Vienna. I have two cats.")
    assert [(st.subject, st.sentence) for st in said][:2] == [
        ("name", "I'm Lena"),
        ("age", "I'm 34"),
    ]
    window = [HumanMessage("Quick intro - I'm Lena, 34"), HumanMessage("how old am i")]
    assert offline_reply(window).endswith("You're 34.")


def test_a_kind_of_someone_asked_for_finds_who_they_named() -> None:
    """ "Do I have any pets?" is answered by "I have two cats", "Do I have
    kids?" by "My son Max is 5", with no recall by meaning (a visitor's
    thread, or a database without vectors)."""
    for told, question in [
        ("I have two cats", "do i have pets"),
        ("My son Max is 5", "Do I have kids?"),
        ("My son Max is 5", "How many children do I have?"),
        ("My sister Ana lives in Rome", "Do I have any siblings?"),
    ]:
        reply = offline_reply([HumanMessage(told), HumanMessage(question)])
        assert reply.endswith(f"You told me: {told}"), (question, reply)
        reply = offline_reply(prompt([], ["I live in Oslo", told], question))
        assert reply.endswith(f"You told me: {told}"), (question, reply)


@pytest.mark.parametrize(
    ("told", "question"),
    [
        ("my bday is may 5", "When is my birthday?"),
        ("My birthday is May 5", "whens my bday"),
        ("my mom lives in Lyon", "Where does my mum live?"),
        ("my bf is called Ian", "Who is my boyfriend?"),
        ("My hubby works at a bakery", "Where does my husband work?"),
    ],
)
def test_a_word_typed_short_is_the_word(told: str, question: str) -> None:
    reply = offline_reply([HumanMessage(told), HumanMessage(question)])
    assert reply.endswith(f"You told me: {told}"), reply
