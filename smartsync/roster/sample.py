"""A deterministic sample school (or trust) in the Realsmart export format.

Used by `smartsync demo`, the tests and the benchmarks: the same size and seed always give the same
roster and the same bytes on disk. The data looks like a UK secondary school: Years 7-13 with a
smaller sixth form, tutor (mentor) groups, classes set by ability in the core subjects and taught in
tutor groups otherwise, GCSE option blocks, A-level classes, MIS groups such as "Pupil Premium", a few
suspended and left pupils, and names with apostrophes, hyphens and accents.

    python -m smartsync.sample --size secondary --seed 1 --out ./export
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from smartsync.roster.model import Group, Membership, MembershipRole, Person, PersonStatus, Roster

SIZES: tuple[str, ...] = ("small", "secondary", "trust", "trust50")
DATA_DIR = Path(__file__).parent / "data"

# The academic year the sample describes; fixed so that the output never depends on today's date.
ACADEMIC_YEAR = 2025
SIXTH_FORM_YEARS = (12, 13)
MAIN_SCHOOL_YEARS = (7, 8, 9, 10, 11)
FORM_LETTERS = "ABCDEFGHJKLMN"

USER_COLUMNS = (
    "id", "role", "email", "first_name", "last_name", "year_group", "status", "employee_id", "school",
)  # fmt: skip
GROUP_COLUMNS = ("id", "name", "type", "subject", "year_group", "school")
MEMBERSHIP_COLUMNS = ("group_id", "user_id", "role")

FIRST_NAMES = (
    "Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Noah", "Mia", "Jack", "Ivy", "Leo", "Lily",
    "Arthur", "Freya", "Muhammad", "Florence", "Oscar", "Willow", "Charlie", "Evie", "Jacob", "Grace",
    "Thomas", "Sophia", "Henry", "Ella", "James", "Poppy", "William", "Rosie", "Alfie", "Daisy",
    "Joshua", "Chloë", "Zoë", "José", "Siân", "Rhys", "Dafydd", "Cerys", "Seán", "Niamh", "Aoife",
    "Ciarán", "Priya", "Arjun", "Aisha", "Fatima", "Yusuf", "Ibrahim", "Zainab", "Amir", "Hannah",
    "Kwame", "Chidi", "Adaeze", "Olumide", "Zofia", "Łukasz", "Oskar", "Maja", "Renée", "Anaïs",
    "Noémie", "Jürgen", "Mateo", "Lucía", "Sofía", "Elif", "Mehmet", "Kai", "Ruby", "Finley", "Erin",
    "Reuben", "Naomi", "Samuel", "Esme", "Eleanor", "Theo", "Harper", "Max", "Matilda", "Ethan",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Thomas", "Johnson",
    "Roberts", "Robinson", "Thompson", "Wright", "Walker", "White", "Edwards", "Hughes", "Green",
    "Hall", "Lewis", "Harris", "Clarke", "Patel", "Khan", "Ahmed", "Ali", "Begum", "Hussain", "Singh",
    "Kaur", "O'Brien", "O'Connor", "O'Neill", "D'Souza", "Smith-Jones", "Hughes-Davies",
    "Lloyd-Williams", "Nowak", "Kowalski", "Wiśniewski", "Okafor", "Adeyemi", "Mensah", "Müller",
    "Núñez", "Brontë", "MacDonald", "McCarthy", "Murphy", "Kelly", "Wood", "Jackson", "Martin",
    "Cooper", "Ward", "Morris", "King", "Baker", "Turner", "Phillips", "Parker", "Bennett", "Price",
    "Griffiths", "Nguyen", "Chen", "Yilmaz", "Fernández", "García", "Da Silva", "Ó Súilleabháin",
)  # fmt: skip

# Subject name -> short code used in class names, e.g. "7x/Ma1".
SUBJECT_CODES: dict[str, str] = {
    "Maths": "Ma", "English": "En", "Science": "Sc", "History": "Hi", "Geography": "Gg", "French": "Fr",
    "Spanish": "Sp", "Computing": "Cp", "Art": "Ar", "Music": "Mu", "PE": "PE", "RE": "RE", "Drama": "Dr",
    "Design and Technology": "DT", "Business": "Bs", "Food": "Fd", "Further Maths": "FM",
    "English Literature": "EL", "Biology": "Bi", "Chemistry": "Ch", "Physics": "Ph", "Psychology": "Ps",
    "Sociology": "So", "Economics": "Ec",
}  # fmt: skip
DEPARTMENTS: dict[str, tuple[str, ...]] = {
    "Maths": ("Maths", "Further Maths"),
    "English": ("English", "English Literature"),
    "Science": ("Science", "Biology", "Chemistry", "Physics"),
    "Humanities": ("History", "Geography", "RE", "Sociology", "Psychology"),
    "Languages": ("French", "Spanish"),
    "Arts": ("Art", "Music", "Drama", "Design and Technology", "Food"),
    "PE": ("PE",),
    "Computing and Business": ("Computing", "Business", "Economics"),
}
# Share of the teaching staff in each department, roughly as in English secondary schools.
DEPARTMENT_WEIGHTS: dict[str, int] = {
    "Maths": 15, "English": 15, "Science": 17, "Humanities": 16, "Languages": 8, "Arts": 14, "PE": 8,
    "Computing and Business": 7,
}  # fmt: skip
CORE_SUBJECTS = ("Maths", "English", "Science")
KS3_FORM_SUBJECTS = (
    "History", "Geography", "Computing", "Art", "Music", "PE", "RE", "Drama", "Design and Technology",
)  # fmt: skip
GCSE_OPTION_BLOCKS: tuple[tuple[str, ...], ...] = (
    ("History", "Geography", "French"),
    ("Geography", "Spanish", "Computing", "Art"),
    ("History", "Music", "Drama", "Business", "Design and Technology"),
    ("French", "Spanish", "Food", "Computing", "Art"),
)
A_LEVEL_SUBJECTS = (
    "Maths", "Further Maths", "English Literature", "Biology", "Chemistry", "Physics", "History",
    "Geography", "Psychology", "Sociology", "Economics", "Computing", "Art", "French", "Spanish", "Music",
    "Drama", "Business", "PE",
)  # fmt: skip
A_LEVEL_POPULARITY = (9, 2, 5, 7, 6, 5, 5, 3, 8, 5, 4, 3, 3, 1, 2, 1, 1, 4, 2)

TRUST_SCHOOLS = (
    ("NFA", "Northfield Academy"), ("RSA", "Riverside Academy"), ("HCA", "Hillcrest Academy"),
    ("OWA", "Oakwood Academy"), ("MBA", "Meadowbank Academy"), ("WGA", "Westgate Academy"),
    ("EBA", "Eastbrook Academy"), ("KMA", "Kingsmead Academy"), ("AFA", "Ashfield Academy"),
    ("BSA", "Brookside Academy"), ("CTA", "Castleton Academy"), ("DFA", "Danesfield Academy"),
    ("EHA", "Elmhurst Academy"), ("FVA", "Fairview Academy"), ("GAA", "Greenacre Academy"),
    ("HFA", "Highfields Academy"), ("IBA", "Ivybridge Academy"), ("LSA", "Lakeside Academy"),
    ("MLA", "Millbrook Academy"), ("NGA", "Northgate Academy"),
    # The large trust (trust50) has 30 more.
    ("ABA", "Abbeyfield Academy"), ("BHA", "Beechwood Academy"), ("CHA", "Cherryhill Academy"),
    ("DLA", "Dalewood Academy"), ("EFA", "Edgefield Academy"), ("FHA", "Foxhill Academy"),
    ("GLA", "Glenside Academy"), ("HWA", "Hawthorn Academy"), ("IHA", "Ironhill Academy"),
    ("JBA", "Juniper Academy"), ("KHA", "Kestrel Academy"), ("LWA", "Larchwood Academy"),
    ("MFA", "Marshfield Academy"), ("NWA", "Newhaven Academy"), ("OFA", "Orchard Academy"),
    ("PBA", "Parkside Academy"), ("QMA", "Queensmead Academy"), ("RWA", "Redwood Academy"),
    ("SFA", "Stonefield Academy"), ("TWA", "Thornwood Academy"), ("UHA", "Upperhill Academy"),
    ("VLA", "Valley Academy"), ("WFA", "Whitfield Academy"), ("YBA", "Yewbank Academy"),
    ("ALA", "Alderley Academy"), ("BMA", "Birchmoor Academy"), ("CWA", "Copperwood Academy"),
    ("DHA", "Deerhurst Academy"), ("ELA", "Elmleigh Academy"), ("FWA", "Fernwood Academy"),
)  # fmt: skip
TRUST_SIZES = {
    "trust": (20, (7, 8, 9, 10), (70, 90, 110, 130)),
    "trust50": (50, (10, 11, 12, 13), (130, 150, 170)),
}

MAX_GCSE_CLASS = 28
MAX_A_LEVEL_CLASS = 20
SIXTH_FORM_TUTOR_GROUP = 20
SECOND_TEACHER_SHARE = 0.12  # classes shared by two teachers (job shares, split timetables)
SUPPORT_STAFF_SHARE = 0.15  # staff who teach no classes (office, site, teaching assistants)


@dataclass(frozen=True)
class SchoolShape:
    """How big one school is."""

    code: str
    name: str
    domain: str
    forms_per_year: int  # Years 7-11
    form_size: int
    sixth_form_per_year: int
    staff: int
    in_trust: bool = False


def _shapes(size: str, rng: random.Random) -> list[SchoolShape]:
    if size == "small":
        return [SchoolShape("NFA", "Northfield Academy", "northfield.example", 2, 25, 25, 30)]
    if size == "secondary":
        return [SchoolShape("NFA", "Northfield Academy", "northfield.example", 9, 27, 140, 150)]
    if size in TRUST_SIZES:
        schools, form_choices, sixth_choices = TRUST_SIZES[size]
        shapes = []
        for code, name in TRUST_SCHOOLS[:schools]:
            forms = rng.choice(form_choices)
            sixth = rng.choice(sixth_choices)
            learners = forms * 27 * len(MAIN_SCHOOL_YEARS) + sixth * len(SIXTH_FORM_YEARS)
            domain = name.split()[0].lower() + ".example"
            shapes.append(SchoolShape(code, name, domain, forms, 27, sixth, learners // 10, in_trust=True))
        return shapes
    raise ValueError(f"unknown sample size {size!r}; expected one of {', '.join(SIZES)}")


def ascii_fold(text: str) -> str:
    """Lower-case ASCII for an email local part: accents dropped, apostrophes and spaces removed."""
    special = {"ł": "l", "ø": "o", "æ": "ae", "ß": "ss", "đ": "d", "œ": "oe"}
    lowered = "".join(special.get(ch, ch) for ch in text.lower())
    decomposed = unicodedata.normalize("NFKD", lowered)
    return "".join(ch for ch in decomposed if ch.isascii() and (ch.isalnum() or ch == "-"))


@dataclass
class _Builder:
    """Accumulates one roster; ids and emails stay unique across every school of a trust."""

    rng: random.Random
    people: list[Person] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    memberships: list[Membership] = field(default_factory=list)
    emails: set[str] = field(default_factory=set)
    employee_ids: set[str] = field(default_factory=set)
    next_user_id: int = 100001
    next_group_id: int = 4001

    def name(self) -> tuple[str, str]:
        return self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)

    def unique_email(self, candidates: Sequence[str], domain: str) -> str:
        for local in candidates:
            if f"{local}@{domain}" not in self.emails:
                break
        else:
            base, n = candidates[-1], 2
            while f"{base}{n}@{domain}" in self.emails:
                n += 1
            local = f"{base}{n}"
        email = f"{local}@{domain}"
        self.emails.add(email)
        return email

    def unique_employee_id(self, base: str) -> str:
        candidate, n = base, 2
        while candidate in self.employee_ids:
            candidate, n = f"{base}{n}", n + 1
        self.employee_ids.add(candidate)
        return candidate

    def person(self, person: Person) -> Person:
        self.people.append(person)
        return person

    def new_user_id(self) -> str:
        self.next_user_id += 1
        return str(self.next_user_id - 1)

    def group(
        self, name: str, kind: str, school: SchoolShape, subject: str | None, year: int | None
    ) -> Group:
        group = Group(
            id=str(self.next_group_id),
            name=name,
            type=kind,  # type: ignore[arg-type]
            subject=subject,
            year_group=f"Year {year}" if year is not None else None,
            school=school.code if school.in_trust else None,
        )
        self.next_group_id += 1
        self.groups.append(group)
        return group

    def add(self, group: Group, people: Sequence[Person], role: MembershipRole) -> None:
        self.memberships.extend(Membership(group.id, p.id, role) for p in people)


@dataclass
class _Staff:
    """Teaching staff of one school, with how many classes each already teaches (to balance the load)."""

    by_department: dict[str, list[Person]]
    load: dict[str, int]

    def teachers_for(self, subject: str, rng: random.Random) -> list[Person]:
        department = next(d for d, subjects in DEPARTMENTS.items() if subject in subjects)
        pool = sorted(self.by_department[department], key=lambda p: (self.load[p.id], p.id))
        chosen = pool[:2] if rng.random() < SECOND_TEACHER_SHARE and len(pool) > 1 else pool[:1]
        for teacher in chosen:
            self.load[teacher.id] += 1
        return chosen


def _make_staff(b: _Builder, school: SchoolShape) -> tuple[_Staff, list[Person]]:
    """Create the school's staff; return the teaching staff and the support staff (who teach no classes).

    The last few created have left: they stay in the export, as in a real MIS, but belong to no group.
    """
    left_count = max(1, school.staff // 60)
    support_count = max(2, round(school.staff * SUPPORT_STAFF_SHARE))
    teaching_count = school.staff - left_count - support_count
    people: list[Person] = []
    for n in range(school.staff):
        first, last = b.name()
        f, la = ascii_fold(first), ascii_fold(last)
        code = (f[:1] + la.replace("-", "")[:2]).upper()
        prefix = f"{school.code}-" if school.in_trust else ""
        status: PersonStatus = "left" if n >= school.staff - left_count else "active"
        people.append(
            b.person(
                Person(
                    id=b.new_user_id(),
                    role="staff",
                    email=b.unique_email([f"{f}.{la}"], school.domain),
                    first_name=first,
                    last_name=last,
                    status=status,
                    employee_id=b.unique_employee_id(prefix + code),
                    school=school.code if school.in_trust else None,
                )
            )
        )
    teaching = people[:teaching_count]
    support = people[teaching_count : school.staff - left_count]
    # Every department gets at least one teacher; the rest follow the usual share of timetable hours.
    departments = list(DEPARTMENTS)
    by_department: dict[str, list[Person]] = {d: [] for d in departments}
    weighted = [d for d in departments for _ in range(DEPARTMENT_WEIGHTS[d])]
    for i, teacher in enumerate(teaching):
        department = departments[i] if i < len(departments) else b.rng.choice(weighted)
        by_department[department].append(teacher)
    return _Staff(by_department, {p.id: 0 for p in teaching}), support


def _make_cohort(b: _Builder, school: SchoolShape, year: int, size: int) -> list[Person]:
    """One year group of learners."""
    intake = ACADEMIC_YEAR - (year - 7)
    yy = f"{intake % 100:02d}"
    school_digits = f"{TRUST_SCHOOLS.index((school.code, school.name)) + 1:02d}" if school.in_trust else ""
    # About 1 in 70 has left (still in the MIS, in no group) and 1 in 140 is suspended, at least one of each
    # in Years 9-11 so that even the small sample shows both.
    left = max(1, round(size / 70))
    suspended = max(1 if year in (9, 10, 11) else 0, round(size / 140))
    picked = b.rng.sample(range(size), left + suspended)
    statuses: dict[int, PersonStatus] = {n: "left" for n in picked[:left]}
    statuses.update({n: "suspended" for n in picked[left:]})
    cohort = []
    for n in range(size):
        first, last = b.name()
        f, la = ascii_fold(first), ascii_fold(last)
        status = statuses.get(n, "active")
        cohort.append(
            b.person(
                Person(
                    id=b.new_user_id(),
                    role="learner",
                    email=b.unique_email([f"{f[:1]}.{la}{yy}", f"{f}.{la}{yy}"], school.domain),
                    first_name=first,
                    last_name=last,
                    year_group=f"Year {year}",
                    status=status,
                    employee_id=b.unique_employee_id(f"{school_digits}{intake}{n + 1:04d}"),
                    school=school.code if school.in_trust else None,
                )
            )
        )
    return cohort


def _chunks(people: list[Person], count: int) -> list[list[Person]]:
    """Split into `count` nearly equal consecutive parts (sets by ability when the list is ranked)."""
    size, extra = divmod(len(people), count)
    parts, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        parts.append(people[start:end])
        start = end
    return [p for p in parts if p]


def _add_class(
    b: _Builder,
    staff: _Staff,
    school: SchoolShape,
    name: str,
    subject: str,
    year: int,
    learners: list[Person],
) -> None:
    group = b.group(name, "class", school, subject, year)
    b.add(group, staff.teachers_for(subject, b.rng), "teacher")
    b.add(group, learners, "learner")


def _main_school_classes(
    b: _Builder, staff: _Staff, school: SchoolShape, year: int, forms: list[tuple[str, list[Person]]]
) -> None:
    # Core subjects are set by ability within a band (half the year); other KS3 subjects are taught in forms.
    bands = [forms[: len(forms) // 2], forms[len(forms) // 2 :]] if len(forms) >= 4 else [forms]
    for band_letter, band in zip("xy", bands, strict=False):
        band_learners = [p for _, members in band for p in members]
        ranked = sorted(band_learners, key=lambda _: b.rng.random())
        for subject in CORE_SUBJECTS:
            code = SUBJECT_CODES[subject]
            for set_number, members in enumerate(_chunks(ranked, len(band)), start=1):
                _add_class(
                    b, staff, school, f"{year}{band_letter}/{code}{set_number}", subject, year, members
                )
            ranked = sorted(ranked, key=lambda _: b.rng.random())
    if year <= 9:
        for form_index, (form, members) in enumerate(forms):
            language = "French" if form_index % 2 == 0 else "Spanish"
            for subject in (*KS3_FORM_SUBJECTS, language):
                _add_class(b, staff, school, f"{form}/{SUBJECT_CODES[subject]}", subject, year, members)
        return
    for form, members in forms:
        for subject in ("PE", "RE"):
            _add_class(b, staff, school, f"{form}/{SUBJECT_CODES[subject]}", subject, year, members)
    # GCSE options: one subject from each block, each subject's takers split into classes of at most 28.
    year_learners = [p for _, members in forms for p in members]
    takers: dict[str, list[Person]] = {}
    for learner in year_learners:
        chosen: list[str] = []
        for block in GCSE_OPTION_BLOCKS:
            subject = b.rng.choice([s for s in block if s not in chosen])
            chosen.append(subject)
            takers.setdefault(subject, []).append(learner)
    for subject in sorted(takers):
        groups = _chunks(takers[subject], -(-len(takers[subject]) // MAX_GCSE_CLASS))
        for number, members in enumerate(groups, start=1):
            _add_class(b, staff, school, f"{year}/{SUBJECT_CODES[subject]}{number}", subject, year, members)


def _sixth_form_classes(
    b: _Builder, staff: _Staff, school: SchoolShape, year: int, learners: list[Person]
) -> None:
    takers: dict[str, list[Person]] = {}
    for learner in learners:
        chosen: list[str] = []
        while len(chosen) < 3:
            subject = b.rng.choices(A_LEVEL_SUBJECTS, weights=A_LEVEL_POPULARITY)[0]
            if subject not in chosen:
                chosen.append(subject)
        for subject in chosen:
            takers.setdefault(subject, []).append(learner)
    for subject in sorted(takers):
        groups = _chunks(takers[subject], -(-len(takers[subject]) // MAX_A_LEVEL_CLASS))
        for number, members in enumerate(groups, start=1):
            _add_class(b, staff, school, f"{year}/{SUBJECT_CODES[subject]}{number}", subject, year, members)


def _sample(rng: random.Random, people: list[Person], share: float) -> list[Person]:
    return [p for p in people if rng.random() < share]


def _mis_groups(
    b: _Builder,
    school: SchoolShape,
    learners_by_year: dict[int, list[Person]],
    teachers: list[Person],
    support: list[Person],
) -> None:
    """MIS user-defined groups: clubs with a staff lead (owner), registers with no owner, a staff group."""
    rng = b.rng
    everyone = [p for year in sorted(learners_by_year) for p in learners_by_year[year]]
    main_school = [p for year in MAIN_SCHOOL_YEARS for p in learners_by_year[year]]
    clubs: list[tuple[str, int | None, list[Person], int]] = [
        ("Year 11 Revision", 11, _sample(rng, learners_by_year[11], 0.3), 2),
        ("Choir", None, _sample(rng, everyone, 0.04), 1),
        ("Orchestra", None, _sample(rng, everyone, 0.03), 1),
        ("School Council", None, _sample(rng, everyone, 0.03), 1),
        ("Duke of Edinburgh", None, _sample(rng, learners_by_year[9] + learners_by_year[10], 0.1), 2),
        ("Football Team", None, _sample(rng, main_school, 0.03), 1),
        ("Eco Club", None, _sample(rng, main_school, 0.02), 1),
        ("Sixth Form Prefects", 13, _sample(rng, learners_by_year[13], 0.15), 1),
    ]
    for name, year, members, leads in clubs:
        group = b.group(name, "group", school, None, year)
        b.add(group, rng.sample(teachers, min(leads, len(teachers))), "teacher")
        b.add(group, members, "learner")
    for name, share in (("Pupil Premium", 0.22), ("SEN Register", 0.13), ("EAL", 0.08)):
        group = b.group(name, "group", school, None, None)
        b.add(group, _sample(rng, everyone, share), "member")
    group = b.group("Support Staff", "group", school, None, None)
    b.add(group, support, "member")


def _school(b: _Builder, school: SchoolShape) -> None:
    staff, support = _make_staff(b, school)
    teachers = [p for members in staff.by_department.values() for p in members]
    tutors = sorted(teachers, key=lambda _: b.rng.random())
    learners_by_year: dict[int, list[Person]] = {}
    tutor_index = 0
    for year in (*MAIN_SCHOOL_YEARS, *SIXTH_FORM_YEARS):
        if year in SIXTH_FORM_YEARS:
            size = school.sixth_form_per_year + b.rng.randint(-3, 3)
            form_count = max(1, -(-size // SIXTH_FORM_TUTOR_GROUP))
        else:
            form_count = school.forms_per_year
            size = sum(school.form_size + b.rng.randint(-2, 2) for _ in range(form_count))
        cohort = _make_cohort(b, school, year, size)
        learners_by_year[year] = cohort
        on_roll = [p for p in cohort if p.status != "left"]  # pupils who left keep no groups
        forms = [
            (f"{year}{FORM_LETTERS[i]}", members) for i, members in enumerate(_chunks(on_roll, form_count))
        ]
        for form, members in forms:
            group = b.group(form, "mentor", school, None, year)
            b.add(group, [tutors[tutor_index % len(tutors)]], "mentor")
            tutor_index += 1
            b.add(group, members, "learner")
        if year in SIXTH_FORM_YEARS:
            _sixth_form_classes(b, staff, school, year, on_roll)
        else:
            _main_school_classes(b, staff, school, year, forms)
    active_learners = {y: [p for p in people if p.status != "left"] for y, people in learners_by_year.items()}
    _mis_groups(b, school, active_learners, teachers, support)


def generate(size: str = "small", seed: int = 1) -> Roster:
    """The sample roster of `size` (small, secondary or trust); the same arguments give the same roster."""
    rng = random.Random(f"smartsync-sample/{size}/{seed}")
    builder = _Builder(rng)
    shapes = _shapes(size, rng)
    for shape in shapes:
        _school(builder, shape)
    return Roster(
        people=tuple(builder.people),
        groups=tuple(builder.groups),
        memberships=tuple(builder.memberships),
        source=f"sample: {size}, seed {seed}",
    )


def _write_csv(path: Path, header: Sequence[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_export(roster: Roster, folder: Path) -> None:
    """Write `roster` as a Realsmart export (users.csv, groups.csv, memberships.csv) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    _write_csv(
        folder / "users.csv",
        USER_COLUMNS,
        [
            [
                p.id,
                p.role,
                p.email,
                p.first_name,
                p.last_name,
                p.year_group or "",
                p.status,
                p.employee_id or "",
                p.school or "",
            ]
            for p in roster.people
        ],
    )
    _write_csv(
        folder / "groups.csv",
        GROUP_COLUMNS,
        [[g.id, g.name, g.type, g.subject or "", g.year_group or "", g.school or ""] for g in roster.groups],
    )
    _write_csv(
        folder / "memberships.csv",
        MEMBERSHIP_COLUMNS,
        [[m.group_id, m.user_id, m.role] for m in roster.memberships],
    )


def bundled_sample_path() -> Path:
    """The folder holding the bundled `small` sample school (the export `smartsync demo` reads)."""
    return DATA_DIR / "sample-small"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m smartsync.sample",
        description="Write a deterministic sample school as a Realsmart export "
        "(users.csv, groups.csv, memberships.csv).",
    )
    parser.add_argument(
        "--size",
        choices=SIZES,
        default="small",
        help="small (~330 people), secondary (~1,650), trust (20 schools, ~30,000), trust50 (50, ~100,000)",
    )
    parser.add_argument("--seed", type=int, default=1, help="the same seed gives the same files (default 1)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the three CSV files into")
    args = parser.parse_args(argv)
    roster = generate(args.size, args.seed)
    write_export(roster, args.out)
    print(
        f"wrote {len(roster.people)} people, {len(roster.groups)} groups and {len(roster.memberships)} "
        f"memberships to {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
