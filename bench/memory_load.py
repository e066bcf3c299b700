"""Planning's long-term memory load for one user with 100, 1,000 and 10,000
memories among 1,000,000 memories of other users, and what it adds to the time
from `query` to the first token.

    .venv/bin/python -m bench.memory_load [--sizes 100,1000,10000] [--others 1000000]
        [--calls 200] [--turns 50] [--explain] [--write] [--vectors]

One run: a throwaway database, migrated; 10,000 other users with 100 memories
each, written server-side (`INSERT ... SELECT generate_series`) from a small
vocabulary (one user in ten writes Korean), kinds mixed like the extraction
makes them (each user's name and home as keyed facts, then about 40% facts,
25% entities, 20% preferences, 15% summaries); then one user per size, built
the same way, plus four older memories that answer the test questions, its
name and home rewritten to Ada Lovelace in Tromsø; then VACUUM ANALYZE. Per
size, `MemoryStore.load_relevant(user_id, question)` is timed over `--calls`
calls cycling through five questions, after a warm-up.
Other users hold 100 memories each, so `--others` also sets how many there are.

The first-token figure runs the real graph turn (`run_turn`, offline model, no
token delay) for the largest user, in a new session each turn, alternating a
session with memory on (the loader in TurnContext) and one with memory off,
and times from starting the turn to its first `token` event.

`--vectors` runs the same on an embedded PostgreSQL 18 with pgvector, every
memory embedded, and times the hybrid load (bench/memory_load_vectors.py).

`--explain` prints EXPLAIN (ANALYZE, BUFFERS) of each query a load issues for
the largest user. The queries are memory/recall.py's (per-user GIN indexes on a
stored search vector, migration 0003); before them, the same run measured
165 ms p50 at 10,000 memories.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
from sqlalchemy.dialects import postgresql

from bench.common import (
    machine,
    median,
    percentile,
    run_on_server_loop,
    scratch_database,
    write_section,
)
from graph.builder import build_graph
from graph.context import MemoryLoader, TurnContext
from graph.offline import OfflineChatModel
from graph.state import Query
from graph.turn import Turn, run_turn
from memory.db import Database, libpq_url, open_database
from memory.journal import Journal
from memory.memories import MemoryStore
from memory.recall import matching, one_statement, recent_parts, search_terms, similar
from memory.sessions import Owner, SessionStore

QUESTIONS = (
    "what is my name?",
    "where do I live?",
    "what projects am I working on?",
    "내 이름이 뭐야?",
    "can you remind me what I told you about the marathon and my sister?",
)

ENGLISH = (  # noqa: SIM905 - a paragraph of words reads better than a list
    "coffee tea running python rust garden kids guitar budget travel deadline meeting "
    "review database migration invoice recipe dog cat marathon piano novel chess hiking "
    "photography client launch api design team manager sister brother daughter son wife "
    "husband friend birthday allergy vegetarian morning evening weekend holiday flight "
    "hotel conference paper thesis course exam book podcast movie series music jazz "
    "climbing cycling swimming yoga project projects work working name lives live home "
    "office remote startup hospital school university teacher doctor nurse lawyer "
    "apartment house rent mortgage car bike train bus commute gym diet sugar gluten "
    "peanut lactose spicy food pizza sushi ramen kimchi pasta salad bread cheese wine "
    "beer tennis football basketball baseball soccer skiing surfing painting drawing "
    "writing reading blog newsletter github kubernetes docker postgres react typescript "
    "go java kotlin swift android iphone laptop keyboard monitor headphones camera "
    "plants tomatoes roses balcony neighbour parents grandmother uncle aunt cousin "
    "wedding anniversary vacation beach mountains lake island museum concert festival "
    "volunteer charity church mosque temple language spanish german french japanese "
    "korean lessons exam interview promotion salary contract freelance deadline sprint "
    "roadmap release bug outage oncall pager standup retro quarterly planning goals"
).split()
KOREAN = (  # noqa: SIM905
    "커피 차 달리기 정원 아이들 기타 예산 여행 마감 회의 검토 데이터베이스 고양이 강아지 "
    "마라톤 피아노 소설 등산 사진 고객 출시 디자인 팀 매니저 언니 오빠 동생 딸 아들 친구 "
    "생일 알레르기 채식 아침 저녁 주말 휴가 비행기 호텔 학회 논문 수업 시험 책 음악 재즈 "
    "요가 프로젝트 일 이름 집 회사 학교 대학교 선생님 의사 아파트 자동차 자전거 지하철 "
    "헬스장 김치 라면 초밥 파스타 빵 와인 테니스 축구 야구 스키 그림 블로그 서울 부산 "
    "제주 대구 인천 광주 이름이 이름은 살아요 일해요 좋아해요 싫어해요"
).split()
FIRST = (  # noqa: SIM905
    "Ada Grace Alan Linus Mina Jisoo Hiro Lena Omar Priya Sven Ingrid Mateo Lucia "
    "Kwame Amara Chen Wei Sofia Noah Emma Liam Olivia Yuki Ravi Anya Tomas Elif"
).split()
LAST = (  # noqa: SIM905
    "Lovelace Hopper Turing Torvalds Park Kim Tanaka Berg Haddad Sharma Olsen Garcia "
    "Rossi Mensah Okafor Li Zhang Novak Costa Silva Ivanova Yilmaz Dubois Moreau"
).split()
CITIES = (  # noqa: SIM905
    "Oslo Tromsø Lima Seoul Berlin Lisbon Nairobi Austin Kyoto Porto Bergen Lagos "
    "Toronto Melbourne Zürich Kraków Bogotá Hanoi Dublin Reykjavík Montréal Busan"
).split()
KOREAN_NAMES = ["김민지", "이서준", "박지우", "최하은", "정도윤", "강서연", "조예준", "윤지민"]
KOREAN_CITIES = ["서울", "부산", "제주", "대구", "인천", "광주", "대전", "수원"]
ENTITIES = (
    "Project Atlas",
    "Project Borealis",
    "the billing service",
    "the mobile app",
    "Threadline",
    "the thesis",
    "Dr. Kim",
    "sister Mina",
    "the Oslo office",
    "the garden",
    "the book club",
    "the marathon",
    "the startup",
    "the band",
)

PHRASE_FUNCTION = """
CREATE FUNCTION pg_temp.phrase(words text[], n int) RETURNS text
LANGUAGE sql VOLATILE AS $$
  SELECT string_agg(words[1 + floor(random() * array_length(words, 1))::int], ' ')
  FROM generate_series(1, n)
$$
"""
PICK = "(%(a)s::text[])[1 + floor(random() * array_length(%(a)s::text[], 1))::int]"


def pick(name: str) -> str:
    return PICK % {"a": f"%({name})s"}


# One row per (g, uid, j, n, ko, session): j is the memory's number within its
# user (0 oldest), n the user's count, ko whether the user writes Korean.
MEMORY_ROWS = f"""
INSERT INTO memories (id, user_id, kind, key, content, source_session_id, created_at, updated_at
  {{vector_columns}})
SELECT gen_random_uuid()::text, uid,
  kind,
  CASE WHEN j = 0 THEN 'name' WHEN j = 1 THEN 'location'
       WHEN kind IN ('entity', 'preference') THEN lower(topic) || ' #' || j END,
  CASE
    WHEN j = 0 AND ko THEN '사용자 이름은 ' || {pick("korean_names")}
    WHEN j = 0 THEN 'User said: my name is ' || {pick("first")} || ' ' || {pick("last")}
    WHEN j = 1 AND ko THEN '사용자는 ' || {pick("korean_cities")} || '에 살아요'
    WHEN j = 1 THEN 'User said: I live in ' || {pick("cities")}
    WHEN kind = 'fact' THEN
      (ARRAY['User mentioned ', 'User said that ', 'The user ', 'User noted: '])[1 + j %% 4]
      || pg_temp.phrase(vocab, 5 + (g * 7 + j) %% 12)
    WHEN kind = 'entity' AND j %% 3 = 0 THEN
      'User said: I work on ' || topic || ', ' || pg_temp.phrase(vocab, 3 + j %% 6)
    WHEN kind = 'entity' THEN topic || ': ' || pg_temp.phrase(vocab, 4 + (g + j) %% 10)
    WHEN kind = 'preference' THEN 'User prefers ' || pg_temp.phrase(vocab, 3 + j %% 6)
    ELSE 'Conversation summary: ' || pg_temp.phrase(vocab, 20 + (g + j) %% 31)
  END,
  session,
  at, at {{vector_values}}
FROM (
  SELECT g, uid, j, ko, session, at, r,
    CASE WHEN j < 2 THEN 'fact' WHEN r < 0.40 THEN 'fact' WHEN r < 0.65 THEN 'entity'
         WHEN r < 0.85 THEN 'preference' ELSE 'summary' END AS kind,
    CASE WHEN r < 0.65 THEN {pick("entities")} ELSE {pick("vocab_en")} END AS topic,
    CASE WHEN ko THEN %(korean)s::text[] ELSE %(english)s::text[] END AS vocab
  FROM ({{source}}) src
) t
"""
# Other users: memory g belongs to user g % users; their dates spread over a year.
OTHERS_SOURCE = """
  SELECT g, md5('bench-user-' || (g %% %(users)s))::uuid::text AS uid, g / %(users)s AS j,
         (g %% %(users)s) %% 10 = 0 AS ko, NULL::text AS session,
         now() - random() * interval '365 days' AS at, random() AS r
  FROM generate_series(%(lo)s, %(hi)s - 1) g
"""
# A measured user: English, a session per memory, oldest first (the question
# answers are its oldest memories, so recency alone does not find them).
TARGET_SOURCE = """
  SELECT g, %(uid)s::text AS uid, g AS j, false AS ko,
         md5(%(uid)s || '-session-' || g)::uuid::text AS session,
         now() - (%(n)s - g) * interval '1 minute' AS at, random() AS r
  FROM generate_series(0, %(n)s - 1) g
"""
TARGET_EXTRAS = [  # what the test questions are about, besides the name and home
    ("entity", "threadline", "User said: I work on Threadline, a chat server in Python"),
    ("entity", "project atlas", "User said: I work on Project Atlas, the billing rewrite"),
    ("fact", None, "사용자 이름이 에이다 러브레이스라고 말함"),
    ("fact", None, "User said that their sister Mina runs the Oslo marathon every year"),
]


def vocab_params() -> dict[str, Any]:
    return {
        "english": ENGLISH,
        "korean": KOREAN,
        "vocab_en": ENGLISH,
        "first": FIRST,
        "last": LAST,
        "cities": CITIES,
        "korean_names": KOREAN_NAMES,
        "korean_cities": KOREAN_CITIES,
        "entities": list(ENTITIES),
    }


def rows_sql(source: str, vectors: bool) -> str:
    """MEMORY_ROWS from `source`; with `vectors`, each row takes a unit vector of
    the pool (bench/memory_load_vectors.py) and the model's name."""
    sql = MEMORY_ROWS.replace("{source}", source)
    columns, values = (", embedding, embedding_model", VECTOR_VALUES) if vectors else ("", "")
    return sql.replace("{vector_columns}", columns).replace("{vector_values}", values)


VECTOR_VALUES = ", (SELECT v FROM bench_pool WHERE i = t.g %% %(pool)s), %(model)s"


def load_data(
    url: str,
    others: int,
    sizes: list[int],
    fill: Callable[[psycopg.Connection[Any]], dict[str, Any]] | None = None,
) -> dict[int, str]:
    """Fill the database; return the measured user of each size.

    `fill` (the vector mode) prepares the connection before the other users'
    rows and returns what their vector columns need: those rows then have
    embeddings; the measured users' rows are left owed.
    """
    users = max(1, others // 100)
    targets: dict[int, str] = {}
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("SELECT setseed(0.42)")
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute(PHRASE_FUNCTION)
        conn.execute(
            "INSERT INTO users (id, email, password_hash) "
            "SELECT md5('bench-user-' || u)::uuid::text, 'user' || u || '@bench.example', '-' "
            "FROM generate_series(0, %(users)s - 1) u",
            {"users": users},
        )
        extra = fill(conn) if fill is not None else {}
        step = 100_000
        for lo in range(0, others, step):
            started = time.perf_counter()
            sql = rows_sql(OTHERS_SOURCE, fill is not None)
            conn.execute(
                sql,
                {
                    **vocab_params(),
                    **extra,
                    "users": users,
                    "lo": lo,
                    "hi": min(others, lo + step),
                },
            )
            print(
                f"  others: {min(others, lo + step):>9,} rows "
                f"({time.perf_counter() - started:.1f} s)",
                flush=True,
            )
        for n in sizes:
            uid = str(uuid.uuid4())
            targets[n] = uid
            conn.execute(
                "INSERT INTO users (id, email, password_hash, display_name) "
                "VALUES (%s, %s, '-', 'Ada')",
                (uid, f"target{n}@bench.example"),
            )
            conn.execute(
                "INSERT INTO chat_sessions (id, user_id, title) "
                "SELECT md5(%(uid)s || '-session-' || g)::uuid::text, %(uid)s, 'bench' "
                "FROM generate_series(0, %(n)s - 1) g",
                {"uid": uid, "n": n},
            )
            sql = rows_sql(TARGET_SOURCE, False)
            conn.execute(sql, {**vocab_params(), "uid": uid, "n": n})
            # The name and home the test questions ask about, and a few more matches;
            # they stay among the user's oldest memories.
            conn.execute(
                "UPDATE memories SET content = CASE key WHEN 'name' THEN "
                "'User said: my name is Ada Lovelace' ELSE 'User said: I live in Tromsø' END "
                "WHERE user_id = %s AND key IN ('name', 'location')",
                (uid,),
            )
            for i, (kind, key, content) in enumerate(TARGET_EXTRAS):
                conn.execute(
                    "INSERT INTO memories (id, user_id, kind, key, content, source_session_id, "
                    "created_at, updated_at) VALUES (gen_random_uuid()::text, %s, %s, %s, %s, "
                    "md5(%s || '-session-' || %s)::uuid::text, "
                    "now() - interval '1 year' + %s * interval '1 minute', "
                    "now() - interval '1 year' + %s * interval '1 minute')",
                    (uid, kind, key, content, uid, i % n, i, i),
                )
            print(f"  user with {n:,} memories loaded", flush=True)
        if fill is None:
            vacuum(conn)
    return targets


def vacuum(conn: psycopg.Connection[Any]) -> None:
    started = time.perf_counter()
    conn.execute("VACUUM (ANALYZE)")
    print(f"  VACUUM ANALYZE ({time.perf_counter() - started:.1f} s)", flush=True)


Loader = MemoryLoader


@dataclass
class Result:
    timings: list[float] = field(default_factory=list)
    loaded: list[int] = field(default_factory=list)
    by_question: dict[str, list[float]] = field(default_factory=dict)
    ids: dict[str, list[str]] = field(default_factory=dict)

    def cell(self) -> str:
        return (
            f"p50 {percentile(self.timings, 50):.2f} ms, p99 {percentile(self.timings, 99):.2f} ms"
            f" ({sum(self.loaded) / len(self.loaded):.1f} loaded)"
        )


async def time_loads(variants: dict[str, Loader], user_id: str, calls: int) -> dict[str, Result]:
    """`calls` loads per variant after 20 warm-up calls, the variants interleaved
    call by call so that whatever else the machine does hits them alike."""
    results = {name: Result() for name in variants}
    for i in range(20 + calls):
        question = QUESTIONS[i % len(QUESTIONS)]
        for name, loader in variants.items():
            started = time.perf_counter()
            loaded = await loader(user_id, question)
            elapsed = (time.perf_counter() - started) * 1000
            if i >= 20:
                result = results[name]
                result.timings.append(elapsed)
                result.loaded.append(len(loaded))
                result.by_question.setdefault(question, []).append(elapsed)
                result.ids[question] = [m["id"] for m in loaded]
    return results


async def first_token(
    variants: dict[str, tuple[Database, Loader]], user_id: str, turns: int
) -> dict[str, dict[str, float]]:
    """Median ms from starting a turn to its first `token`, memory on and off,
    per loader; all of them interleaved turn by turn."""
    graph = build_graph()
    contexts = {}
    for name, (db, loader) in variants.items():
        sessions = SessionStore(db, anon_ttl=timedelta(hours=24))
        journal = Journal(db, anon_ttl=timedelta(hours=24))
        ctx = TurnContext(
            journal=journal,
            sessions=sessions,
            model=OfflineChatModel(),
            window_messages=20,
            memory_loader=loader,
        )
        contexts[name] = (db, sessions, ctx)
    runs = [(name, memory) for name in variants for memory in (True, False)]
    results: dict[tuple[str, bool], list[float]] = {run: [] for run in runs}
    for i in range(turns + 5):  # the first five of each are warm-up
        for name, memory in runs if i % 2 == 0 else runs[::-1]:
            db, sessions, ctx = contexts[name]
            session = await sessions.create(Owner(user_id=user_id), memory=memory)
            query: Query = {"id": str(uuid.uuid4()), "content": QUESTIONS[i % len(QUESTIONS)]}
            turn = Turn(session.id, user_id, memory, query)
            started = time.perf_counter()
            first: float | None = None
            loaded = False
            async for event in run_turn(graph, db.pool, ctx, turn):
                loaded = loaded or event["type"] == "memory_loaded"
                if event["type"] == "token" and first is None:
                    first = (time.perf_counter() - started) * 1000
            assert first is not None and loaded == memory
            if i >= 5:
                results[(name, memory)].append(first)
    return {
        name: {
            "memory on": median(results[(name, True)]),
            "memory off": median(results[(name, False)]),
        }
        for name in variants
    }


# -- the proposed fix ---------------------------------------------------------------
# Verified here on the throwaway database only; as a migration it is
# migrations/versions/0003 in the report, plus the query rewrite below.


def statements(user_id: str, question: str, fixed: bool) -> list[tuple[str, Any]]:
    """What one load issues. Since the fix landed (memory/recall.py, migration
    0003) there is only the fixed shape; `fixed` is kept for the callers."""
    terms = search_terms(question) or ""
    both = one_statement(recent_parts(user_id, 4) + [matching(user_id, terms, question)])
    return [
        ("recency lists and full text", both),
        ("trigram fallback", similar(user_id, question, [], 10)),
    ]


def explain(url: str, user_id: str, fixed: bool) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of each query of a load, per question, as the
    app runs them: parameters bound (psycopg), planned with their values."""
    dialect = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
    out = []
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for question in QUESTIONS:
            for name, statement in statements(user_id, question, fixed):
                compiled = statement.compile(
                    dialect=dialect, compile_kwargs={"render_postcompile": True}
                )
                sql = "EXPLAIN (ANALYZE, BUFFERS) " + str(compiled)
                conn.execute(sql, compiled.params)  # warm: the figures are the second run's
                rows = conn.execute(sql, compiled.params).fetchall()
                plan = "\n".join(r[0] for r in rows)
                out.append(f"-- {name} ({question!r})\n{plan}")
    return "\n\n".join(out)


def same_lists(a: Result, b: Result) -> str:
    """For how many questions both load the same memories in the same order."""
    same = sum(a.ids[question] == b.ids.get(question) for question in a.ids)
    return f"{same} of {len(a.ids)}"


# -- the run ------------------------------------------------------------------------


def size_table(rows: dict[str, dict[int, Result]], sizes: list[int]) -> str:
    lines = [
        "| memories of the user | " + " | ".join(rows) + " |",
        "|---" * (len(rows) + 1) + "|",
    ]
    for n in sizes:
        cells = [result[n].cell() if n in result else "—" for result in rows.values()]
        lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def question_table(rows: dict[str, dict[int, Result]], n: int) -> str:
    lines = [
        f"| question (p50 at {n:,}) | " + " | ".join(rows) + " |",
        "|---" * (len(rows) + 1) + "|",
    ]
    for question in QUESTIONS:
        cells = [f"{percentile(r[n].by_question[question], 50):.2f} ms" for r in rows.values()]
        lines.append(f"| {question} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> str:
    sizes: list[int] = args.sizes
    largest = max(sizes)
    run_started, load_average = time.perf_counter(), os.getloadavg()[0]
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(scratch_database())
        print(f"loading {args.others:,} memories of other users and users of {sizes}", flush=True)
        started = time.perf_counter()
        targets = load_data(url, args.others, sizes)
        load_seconds = time.perf_counter() - started
        fix_seconds = 0.0
        urls = {"as is": url}
        dbs = {name: await open_database(u, pool_size=4) for name, u in urls.items()}
        try:
            stores = {name: MemoryStore(db) for name, db in dbs.items()}
            variants: dict[str, tuple[Database, Loader]] = {
                "load_relevant": (dbs["as is"], stores["as is"].load_relevant)
            }
            rows: dict[str, dict[int, Result]] = {name: {} for name in variants}
            for n in sizes:
                loaders = {name: loader for name, (_, loader) in variants.items()}
                for name, result in (await time_loads(loaders, targets[n], args.calls)).items():
                    rows[name][n] = result
                    print(f"  {n:,}: {name} {result.cell()}", flush=True)
            if args.explain:
                print(explain(urls["as is"], targets[largest], fixed=True), flush=True)
            compared = {k: v for k, v in variants.items() if "alone" not in k}
            tokens = await first_token(compared, targets[largest], args.turns)
        finally:
            for db in dbs.values():
                await db.close()
        facts = machine(url)
    return report(args, rows, tokens, facts, load_average, load_seconds, fix_seconds, run_started)


def report(
    args: argparse.Namespace,
    rows: dict[str, dict[int, Result]],
    tokens: dict[str, dict[str, float]],
    facts: str,
    load_average: float,
    load_seconds: float,
    fix_seconds: float,
    run_started: float,
) -> str:
    sizes, largest = args.sizes, max(args.sizes)
    before = rows["load_relevant"][largest]
    lines = [
        f"- p50 at {largest:,} memories, `load_relevant` as it is: "
        f"{percentile(before.timings, 50):.2f} ms (target < 5 ms: "
        f"{'met' if percentile(before.timings, 50) < 5 else 'missed'})"
    ]
    if "rewrite + migration" in rows:
        after = rows["rewrite + migration"][largest]
        lines.append(
            f"- with the proposed migration and query rewrite: "
            f"{percentile(after.timings, 50):.2f} ms "
            f"({'met' if percentile(after.timings, 50) < 5 else 'missed'}); "
            f"the same memories in the same order as `load_relevant` for "
            f"{same_lists(before, after)} questions; the migration took {fix_seconds:.0f} s "
            f"on this table (ADD COLUMN ... STORED rewrites it)"
        )
    tokens_table = "\n".join(
        f"| {name} | {m['memory off']:.1f} ms | {m['memory on']:.1f} ms | "
        f"{m['memory on'] - m['memory off']:+.1f} ms |"
        for name, m in tokens.items()
    )
    return (
        "## memory_load\n\n"
        f"`.venv/bin/python -m bench.memory_load` on {facts}; load average "
        f"{load_average:.1f} at the start and {os.getloadavg()[0]:.1f} at the end (other "
        f"sessions' tests and benchmarks shared the machine). Filling the "
        f"database took {load_seconds:.0f} s, the whole run "
        f"{time.perf_counter() - run_started:.0f} s.\n\n"
        f"Planning's memory load (`MemoryStore.load_relevant(user_id, question)`) for one "
        f"user among {args.others:,} memories of {args.others // 100:,} other users, after "
        f"VACUUM ANALYZE; {args.calls} calls per size after 20 warm-up calls, cycling "
        f"through {len(QUESTIONS)} questions"
        + (
            ". The fix runs on a copy of the database with the migration applied (then "
            "VACUUM ANALYZE too), the variants interleaved call by call"
            if len(rows) > 1
            else ""
        )
        + ":\n\n"
        f"{size_table(rows, sizes)}\n\n"
        f"{question_table(rows, largest)}\n\n" + "\n".join(lines) + "\n\n"
        f"Time from starting a turn (`run_turn`, the real graph, offline model) to its first "
        f"`token`, for the {largest:,}-memory user: median of {args.turns} turns each, a new "
        f"session per turn, memory on and off"
        + (" and the loaders" if len(tokens) > 1 else "")
        + " interleaved turn by turn:\n\n"
        "| loader | memory off | memory on | added by memory loading |\n|---|---|---|---|\n"
        f"{tokens_table}\n"
    ).strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100,1000,10000", help="memories of the measured users")
    parser.add_argument("--others", type=int, default=1_000_000, help="memories of other users")
    parser.add_argument("--calls", type=int, default=200, help="loads per size")
    parser.add_argument("--turns", type=int, default=50, help="turns per first-token median")
    parser.add_argument("--explain", action="store_true", help="print the query plans")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument(
        "--vectors",
        action="store_true",
        help="hybrid recall on an embedded PostgreSQL 18 with pgvector (bench/memory_load_vectors)",
    )
    args = parser.parse_args()
    args.sizes = sorted(int(n) for n in args.sizes.split(","))
    if args.vectors:
        from bench import memory_load_vectors  # it imports this module

        run_on_server_loop(memory_load_vectors.main(args))
        return
    body = run_on_server_loop(run(args))
    print()
    print(body)
    if args.write:
        write_section("memory_load", body)


if __name__ == "__main__":
    main()
