"""The seeder's data: deterministic rows for every table, as COPY text.

Everything derives from the number of articles and one seed, so two runs
with the same arguments load the same data set (the benchmarks compare
like with like). Each table draws from its own ``random.Random`` (seeded
from the seed and the table's name), so one table's stream never depends
on how many numbers another consumed; the favourites' per-article counts
are drawn from a stream of their own, replayed when the favourites are
written, so ``articles.favorites_count`` agrees with the ``favorites`` rows
by construction.

Shapes (a real blogging site is skewed, and the planner must cope with it):

* users: one per 10 articles; 30% of them write, with Zipf-like weights
  (a few prolific authors, a long tail);
* tags: a bounded vocabulary (at most 300 names), 0-5 per article, Zipf-
  like (a handful of tags are on a large share of the articles, most are
  rare);
* follows: ~6 per user (heavy-tailed), towards popular authors;
* favourites: ~4 per article (heavy-tailed, at most 2,000), comments: ~2 per
  article (heavy-tailed, at most 150);
* markdown bodies of ~700 characters: headings, paragraphs, emphasis,
  code spans, lists, sometimes a fenced code block;
* articles are created in id order over three years, so ``created_at``
  follows ``id`` as it does in production.

Rows are COPY text format lines: tab-separated, ``\\N`` for NULL. The
generated text never contains a tab or a backslash, and newlines inside
bodies are written as the two characters ``\\n``, so no escaping pass
is needed.
"""

from __future__ import annotations

import itertools
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

START = datetime(2022, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=3 * 365)
TAGS_MAX = 300
TAGS_PER_ARTICLE = (0, 1, 2, 3, 4, 5)
TAGS_PER_ARTICLE_WEIGHTS = (5, 15, 25, 25, 20, 10)
COMMENTS_MAX = 150
# Every seeded user logs in with this password (one argon2 hash, computed once).
PASSWORD = "conduit-seed"
EMAIL_DOMAIN = "seed.conduit"
NL = "\\n"  # a newline inside a COPY text field

FIRST = (  # noqa: SIM905 (a word list reads better as text)
    "ada alan barbara claude dennis edsger frances grace guido hedy ken linus "
    "margaret niklaus radia shafi tim whitfield yukihiro john donald leslie "
    "fran ivan jean karen lynn mary rasmus sophie"
).split()
LAST = (  # noqa: SIM905 (a word list reads better as text)
    "lovelace turing liskov shannon ritchie dijkstra allen hopper rossum lamarr "
    "thompson torvalds hamilton wirth perlman goldwasser berners diffie matsumoto "
    "mccarthy knuth lamport backus sutherland sparck cooper goldberg"
).split()
TOPICS = (  # noqa: SIM905 (a word list reads better as text)
    "python javascript rust go postgres sql redis caching pyramid django flask "
    "web api http rest graphql css html react vue svelte testing pytest ci devops "
    "docker kubernetes linux security crypto performance scaling databases "
    "indexing queues celery async concurrency algorithms datastructures design "
    "architecture microservices monoliths cloud aws networking dns tls git "
    "opensource career learning beginners tutorial productivity writing ux "
    "accessibility mobile android ios swift kotlin java scala haskell elixir "
    "erlang clojure ocaml c cpp zig wasm compilers interpreters math statistics "
    "datascience machinelearning ai llm nlp vision robotics hardware embedded "
    "iot gamedev graphics audio music books history ethics privacy startups "
    "management agile remote hiring interviews"
).split()
WORDS = (  # noqa: SIM905 (a word list reads better as text)
    "the a an of to in and for with on by from at as is are was be this that "
    "it its we you they our your their will can should would could may must "
    "server client request response query index table row column page cache "
    "worker process thread queue pool connection replica primary latency "
    "throughput memory disk network packet socket stream buffer file module "
    "function class method object value type error exception test build deploy "
    "release version branch commit merge review design pattern system service "
    "data model schema migration transaction lock commit rollback snapshot "
    "simple fast slow small large careful robust fragile clear hidden explicit "
    "first next last every each many few most some all never always often "
    "runs reads writes builds checks measures scales fails retries waits "
    "returns handles starts stops grows shrinks keeps drops sends receives"
).split()
CODE = (
    "```python{nl}def handler(request):{nl}    return {{'ok': True}}{nl}```",
    "```sql{nl}SELECT id FROM articles ORDER BY created_at DESC LIMIT 20;{nl}```",
    "```bash{nl}make test && make bench{nl}```",
)


def _rng(seed: int, name: str) -> random.Random:
    return random.Random(seed * 1_000_003 + zlib.crc32(name.encode()))


def _zipf_cum_weights(n: int, s: float = 1.0) -> list[float]:
    return list(itertools.accumulate(1.0 / (rank**s) for rank in range(1, n + 1)))


def _stamp(moment: datetime) -> str:
    return moment.isoformat()


@dataclass(frozen=True)
class Plan:
    """How many of everything, derived from the number of articles."""

    articles: int
    seed: int = 42

    @property
    def users(self) -> int:
        return max(20, self.articles // 10)

    @property
    def authors(self) -> int:
        return max(5, self.users * 3 // 10)

    @property
    def tags(self) -> int:
        return min(TAGS_MAX, max(10, self.articles // 20))


def username(user_id: int) -> str:
    """The seeded user ``user_id``'s name (ids start at 1)."""
    first = FIRST[user_id % len(FIRST)]
    last = LAST[(user_id // len(FIRST)) % len(LAST)]
    return f"{first}_{last}_{user_id}"


def email(user_id: int) -> str:
    return f"{username(user_id)}@{EMAIL_DOMAIN}"


def tag_name(tag_id: int) -> str:
    """Tag ``tag_id`` (from 1): single topics first, then ``topic-topic`` pairs."""
    index = tag_id - 1
    if index < len(TOPICS):
        return TOPICS[index]
    index -= len(TOPICS)
    first, second = divmod(index, len(TOPICS) - 1)
    other = TOPICS[second + 1 if second >= first else second]
    return f"{TOPICS[first % len(TOPICS)]}-{other}"


def _author_id(plan: Plan, author_rank: int) -> int:
    """Authors are spread over the user ids (ranks 0.. map to ids 1..)."""
    return 1 + (author_rank * 7919) % plan.users if plan.users % 7919 else 1 + author_rank


class Text:
    """Sentences and markdown from one random stream.

    Writing every sentence word by word costs ~200 microseconds per article
    (minutes for a million), so the building blocks (sentences, paragraphs,
    lists) are written once into pools, and each article picks its own
    combination: every body is still different, and cheap.
    """

    POOL = 4000

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.sentences = [self._sentence(6, 14) for _ in range(self.POOL)]
        self.items = [f"- {self._sentence(3, 6)}" for _ in range(self.POOL // 4)]
        self.paragraphs = [self._paragraph() for _ in range(self.POOL)]

    def _sentence(self, low: int, high: int) -> str:
        words = self.rng.choices(WORDS, k=self.rng.randint(low, high))
        words[0] = words[0].capitalize()
        return " ".join(words) + "."

    def _paragraph(self) -> str:
        sentences = self.rng.choices(self.sentences, k=self.rng.randint(2, 4))
        # Inline markdown in some paragraphs: emphasis, a code span.
        if self.rng.random() < 0.5:
            sentences[0] = f"**{sentences[0][:-1]}**."
        if self.rng.random() < 0.3:
            sentences[-1] = sentences[-1][:-1] + f" with `{self.rng.choice(WORDS)}()`."
        return " ".join(sentences)

    def sentence(self) -> str:
        return self.rng.choice(self.sentences)

    def paragraph(self) -> str:
        return self.rng.choice(self.paragraphs)

    def title(self) -> str:
        words = self.rng.choices(WORDS, k=self.rng.randint(3, 7))
        return " ".join(w.capitalize() for w in words)

    def body(self) -> str:
        rng = self.rng
        paragraphs = rng.choices(self.paragraphs, k=rng.randint(3, 5))
        parts = [f"## {self.title()}", *paragraphs[:2]]
        if rng.random() < 0.5:
            parts.append(NL.join(rng.choices(self.items, k=rng.randint(2, 4))))
        parts.extend(paragraphs[2:])
        if rng.random() < 0.25:
            parts.append(rng.choice(CODE).format(nl=NL))
        return (NL + NL).join(parts)


def users(plan: Plan, password_hash: str) -> Iterator[str]:
    rng = _rng(plan.seed, "users")
    text = Text(rng)
    step = SPAN / (plan.users + 1)
    for user_id in range(1, plan.users + 1):
        created = _stamp(START - SPAN / 4 + step * user_id)
        bio = text.sentence() if rng.random() < 0.4 else "\\N"
        yield (
            f"{user_id}\t{username(user_id)}\t{email(user_id)}\t{password_hash}\t"
            f"{bio}\t\\N\t{created}\t{created}\n"
        )


def tags(plan: Plan) -> Iterator[str]:
    for tag_id in range(1, plan.tags + 1):
        yield f"{tag_id}\t{tag_name(tag_id)}\n"


def follows(plan: Plan) -> Iterator[str]:
    """Each user follows a heavy-tailed number of authors, popular ones more often."""
    rng = _rng(plan.seed, "follows")
    weights = _zipf_cum_weights(plan.authors)
    ranks = range(plan.authors)
    created = _stamp(START)
    for follower in range(1, plan.users + 1):
        wanted = min(plan.authors - 1, int(rng.paretovariate(1.3)) * 2 - 1)
        chosen = {_author_id(plan, r) for r in rng.choices(ranks, cum_weights=weights, k=wanted)}
        chosen.discard(follower)
        for followed in sorted(chosen):
            yield f"{follower}\t{followed}\t{created}\n"


def _favorite_counts(plan: Plan) -> Iterator[int]:
    """How many users favourite each article, in article order (replayable)."""
    rng = _rng(plan.seed, "favorite-counts")
    cap = min(plan.users, 2000)
    for _ in range(plan.articles):
        yield min(cap, int(rng.paretovariate(1.4)) * 2 - 2 + (rng.random() < 0.3))


def _created(plan: Plan, article_id: int) -> datetime:
    return START + SPAN * (article_id / (plan.articles + 1))


def articles(plan: Plan) -> Iterator[str]:
    rng = _rng(plan.seed, "articles")
    text = Text(rng)
    weights = _zipf_cum_weights(plan.authors, 1.1)
    ranks = range(plan.authors)
    counts = _favorite_counts(plan)
    tags = _tag_choices(plan)
    batch = 1000
    for first in range(1, plan.articles + 1, batch):
        ids = range(first, min(first + batch, plan.articles + 1))
        authors = rng.choices(ranks, cum_weights=weights, k=len(ids))
        for article_id, rank in zip(ids, authors, strict=True):
            title = text.title()
            slug = f"{title.lower().replace(' ', '-')}-{article_id:x}"
            created = _created(plan, article_id)
            updated = (
                created + timedelta(hours=rng.random() * 48) if rng.random() < 0.2 else created
            )
            names = _copy_array([tag_name(t) for t in next(tags)])
            yield (
                f"{article_id}\t{slug}\t{title}\t{text.sentence()}\t{text.body()}\t"
                f"{_author_id(plan, rank)}\t{next(counts)}\t{_stamp(created)}\t{_stamp(updated)}\t"
                f"{names}\n"
            )


def _tag_choices(plan: Plan) -> Iterator[list[int]]:
    """Each article's tag ids in order (replayable): ``articles`` copies their
    names into ``articles.tag_names``, ``article_tags`` writes the links."""
    rng = _rng(plan.seed, "article-tags")
    weights = _zipf_cum_weights(plan.tags, 0.9)
    tag_ids = range(1, plan.tags + 1)
    for _ in range(plan.articles):
        wanted = rng.choices(TAGS_PER_ARTICLE, TAGS_PER_ARTICLE_WEIGHTS)[0]
        if not wanted:
            yield []
            continue
        yield list(dict.fromkeys(rng.choices(tag_ids, cum_weights=weights, k=wanted)))


def _copy_array(names: list[str]) -> str:
    """A Postgres array literal of ``names`` as a COPY text field."""
    quoted = ('"' + n.replace("\\", "\\\\").replace('"', '\\"') + '"' for n in names)
    field = ("{" + ",".join(quoted) + "}").replace("\\", "\\\\")
    return field.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def article_tags(plan: Plan) -> Iterator[str]:
    for article_id, chosen in enumerate(_tag_choices(plan), start=1):
        created = _stamp(_created(plan, article_id))
        for position, tag_id in enumerate(chosen):
            yield f"{article_id}\t{tag_id}\t{position}\t{created}\n"


def favorites(plan: Plan) -> Iterator[str]:
    """Exactly ``favorites_count`` distinct users per article (see module docs)."""
    rng = _rng(plan.seed, "favorites")
    user_ids = range(1, plan.users + 1)
    for article_id, wanted in enumerate(_favorite_counts(plan), start=1):
        if not wanted:
            continue
        created = _stamp(_created(plan, article_id) + timedelta(days=1))
        for user_id in sorted(rng.sample(user_ids, wanted)):
            yield f"{user_id}\t{article_id}\t{created}\n"


def comments(plan: Plan) -> Iterator[str]:
    rng = _rng(plan.seed, "comments")
    text = Text(rng)
    comment_id = 0
    for article_id in range(1, plan.articles + 1):
        # Heavy-tailed, but capped: the API returns an article's comments
        # unpaged, and no real discussion has a hundred thousand.
        wanted = min(COMMENTS_MAX, int(rng.paretovariate(1.5)) - 1 + (rng.random() < 0.4))
        if not wanted:
            continue
        created = _created(plan, article_id)
        for n in range(wanted):
            comment_id += 1
            author = rng.randint(1, plan.users)
            body = text.sentence() if n % 3 else text.paragraph()
            stamp = _stamp(created + timedelta(minutes=5 + 37 * n))
            yield f"{comment_id}\t{article_id}\t{author}\t{body}\t{stamp}\t{stamp}\n"


class Stream:
    """A read-only file over generated lines, for ``cursor.copy_expert``.

    Reads may be short (at most one batch of lines at a time): the COPY
    loop reads until it gets nothing back.
    """

    def __init__(self, lines: Iterator[str], batch: int = 2000):
        self.lines = lines
        self.batch = batch
        self.buffer = b""
        self.position = 0
        self.rows = 0

    def _refill(self) -> bool:
        chunk = list(itertools.islice(self.lines, self.batch))
        self.rows += len(chunk)
        self.buffer = "".join(chunk).encode()
        self.position = 0
        return bool(chunk)

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            parts = [self.buffer[self.position :]]
            while self._refill():
                parts.append(self.buffer)
            self.buffer, self.position = b"", 0
            return b"".join(parts)
        if self.position >= len(self.buffer) and not self._refill():
            return b""
        end = self.position + size
        data = self.buffer[self.position : end]
        self.position = end
        return data
