"""A small grammar for the way people talk to robots.

An utterance is read as::

    [interjections, politeness, modal frames]* [verb or request frame] [me|us|for me]
        EXPRESSION [trailing fillers, particles]*

and only the expression is handed to the model. The steps, in order:

1. **Tokenize** (:func:`tokenize`): lower case, drop punctuation, expand the contractions that
   carry grammar ("what's" -> "what is", "i'd" -> "i would", "gimme" -> "give me"), drop
   hesitations and politeness that can stand anywhere ("um", "uh", "please"), and collapse
   speech-to-text stutters ("the the red cup", "pick up pick up the cup").
2. **Prefix** (:func:`read_prefix`): walk from the left, at each position taking the *longest*
   phrase that matches one of the tables below. Skippable phrases ("hey robot", "can you",
   "i want you to", "go and") are consumed and the walk goes on; the first verb ("pick up",
   "keep an eye on", "where is") or request frame ("i need", "can i have", "give me") sets the
   action and ends the walk. Longest match is what keeps "hold on to the cup" (a PICK verb)
   apart from "hold on, grab the cup" (an interjection), and "can you see" apart from "can".
   STOP phrases end the parse; some of them ("wait", "hold on") only when nothing follows,
   since "wait, grab the blue one" is a new command, not a stop.
3. **Suffix** (:func:`strip_suffix`): peel fillers off the right end ("thanks", "for me",
   "over here", "to me", "robot", "if you can") and the particle of a split verb ("pick the cup
   *up*"). Each rule has a guard where the words can also be part of a description: "to me"
   stays in "the cup closest to me", "right now" loses only "now" in "the cup on the right now",
   "up" goes only after pick/lift.
4. **Unknown carriers** (:func:`drop_unknown_carrier`): when no known verb led the utterance
   ("push the red cup", "i'm after the bowl"), words before the first determiner are dropped
   if none of them could describe an object (a category, colour, size, position or relation
   word), so an unknown verb never ends up inside the query.

The object words themselves are never rewritten: relations and positions ("the cup to the left
of the bowl", "the ball on the right", "the cup closest to the camera") pass through whole.
"can" is a modal only inside the frames that say so ("can you", "can i have"); elsewhere it is
the category.

Why a grammar and not an NLP library: the candidates were measured against the phrase table in
the tests. spaCy's wheel alone is 35 MB (plus its compiled dependencies) and the English model
it needs to tag verbs is not published on PyPI, so it cannot be installed from the package
index; NLTK (1.7 MB) needs its tagger data from a separate download that is not a package
either. Neither can run here, and a tagger would still need these carrier tables, because the
hard cases are lexical (which verbs mean PICK, which trailing words are fillers). The grammar
parses the whole table correctly in tens of microseconds per command.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from unipixel_ros.dataset.vocab import CATEGORIES, COLORS

# --------------------------------------------------------------------------------------------
# Words

#: contractions and speech-to-text spellings, expanded before anything else
CONTRACTIONS = {
    "what's": 'what is', "where's": 'where is', "that's": 'that is', "it's": 'it is',
    "there's": 'there is', "here's": 'here is', "i'd": 'i would', "i'm": 'i am',
    "i'll": 'i will', "let's": 'let us', "don't": 'do not', "dont": 'do not',
    "you'd": 'you would', "can't": 'can not', "won't": 'will not', 'wanna': 'want to',
    'gimme': 'give me', 'lemme': 'let me', 'nevermind': 'never mind', 'whats': 'what is',
    'wheres': 'where is', 'im': 'i am',
}
#: dropped wherever they stand: hesitations and politeness never describe an object
ANYWHERE = frozenset('um umm uh uhh uhm er erm hmm ah eh please kindly'.split())
#: a word that starts the referring expression
DETERMINERS = frozenset('the a an this that these those my your some any'.split())
#: size, superlative and position words: words that describe an object without naming it
DESCRIBING = frozenset(
    'small medium medium-sized sized large big little tiny huge tall short biggest largest '
    'smallest tiniest tallest shortest leftmost rightmost nearest closest farthest furthest '
    'left right front back middle center centre top bottom first second third last other '
    'empty full object objects thing things item items one ones'.split())
#: words that link a target to an anchor or a place ("next to", "on the left", "behind")
RELATIONAL = frozenset(
    'of to on in at by near next beside behind between under below above over inside '
    'outside around against with from closer close far toward towards'.split())
#: words before "to me" that make it part of the description ("the cup closest to me")
_NEAR_WORDS = frozenset(
    'closest nearest close closer near nearer next farthest furthest far'.split())
#: an expression made only of these names nothing ("it", "that one", "the other one")
REFERENCE_ONLY = frozenset(
    'it this that these those them one ones the a an other another same something anything '
    'there here up'.split())
#: adverbs dropped inside a request ("i would *really* like", "could you *just* grab")
ADVERBS = frozenset('really just quickly also actually maybe possibly definitely'.split())
_BEFORE_ADVERB = frozenset('i we you would could will'.split())   # not "can": the category
#: particles a verb may leave after its object ("pick the cup up", "bring the can over")
PARTICLES = {'pick': 'up', 'picking': 'up', 'lift': 'up', 'lifting': 'up', 'bring': 'over',
             'bringing': 'over', 'hand': 'over', 'handing': 'over', 'pass': 'over',
             'passing': 'over', 'give': 'over'}
#: words that close a "where" question ("where the box *is*", "where did the bowl *go*")
WHERE_CLOSERS = frozenset('is are go gone went at'.split())
#: verbs that are neither PICK nor TRACK: the command is still a FIND of their object
OTHER_VERBS = frozenset(
    'push move put place drop touch tap poke knock nudge shake turn rotate flip open close '
    'clean wipe check inspect examine use count measure scan approach reach throw toss kick '
    'hit squeeze wash fill stack sort hide'.split())

# --------------------------------------------------------------------------------------------
# Phrase tables, "|"-separated, compiled into PREFIX_TABLE: word tuple -> _Entry. Kinds:
#   skip       consumed, the walk goes on
#   skip_more  consumed only when something follows; alone it is a STOP ("wait", "hold on")
#   stop       the utterance is a STOP, whatever follows ("stop tracking the ball")
#   describe   the utterance is a DESCRIBE question
#   verb       sets the action; what follows is the expression. _VERBS['where'] are FIND verbs
#              whose clause may end in "is"/"go" ("tell me where the box is")

_SKIP = """
hey robot | hi robot | hello robot | ok robot | okay robot | robot | hey | hi | hello | yo |
ok | okay | alright | all right | so | now | and | then | also | well | oh | actually | sorry |
excuse me | just | come on | go | go ahead and | go and | try to | try and | quickly |
can you | could you | would you | will you | can we | could we | let us | would you mind |
do you mind | would you be able to | are you able to | can you help me | help me |
i want you to | i need you to | i would like you to | i would love you to | i said |
you can | you could | you should | you need to | i want to | i would like to | we need to |
i need to
"""
_SKIP_MORE = 'wait | wait a second | wait a moment | wait a minute | hold on | hang on | ' \
             'one second | one moment | just a second | just a moment | hold it | no'
_STOP = """
stop | stop it | cancel | abort | halt | freeze | pause | never mind | forget it |
forget about it | that is enough | enough | do not | no more
"""
_VERBS = {
    'pick': """
        pick up | pick | picking up | picking | grab | grabbing | grasp | grasping | take |
        taking | fetch | fetching | get | getting | bring | bringing | hand | handing | give |
        giving | pass | passing | hand over | pass over | bring over | lift | lift up | lifting |
        hold | holding | hold on to | hold onto | collect | retrieve | i need | i want |
        i would like | i would love | i will have | i will take | we need | we want |
        can i have | could i have | may i have | can i get | could i get | may i get |
        let me have | let me get | give me | get me | i am after
        """,
    'find': """
        find | finding | locate | locating | show | showing | look at | look for | looking for |
        i am looking for | we are looking for | point at | point to | point out | pointing at |
        highlight | segment | search for | spot | identify | see | do you see | can you see |
        detect | mark | go to | let me see | is there | are there | have you seen |
        can you find
        """,
    'where': """
        where is | where are | where | where did | where has | where have | tell me where |
        show me where | do you know where | can you tell me where | could you tell me where
        """,
    'track': """
        track | tracking | follow | following | keep tracking | keep following |
        keep an eye on | keep your eye on | keep your eyes on | keep watching | watch |
        watching | monitor | stay on | stay with | lock on to | keep track of
        """,
}
#: DESCRIBE: a question about the object at the last clicked point
_DESCRIBE = """
what is this | what is that | what is it | what is here | what is there | what are these |
what are those | what do you see | describe this | describe that | describe it |
tell me what this is | tell me what that is | tell me what it is | tell me about this |
tell me about that | tell me about it | what am i looking at | identify this | identify that
"""
#: trailing fillers; guarded ones are handled in :func:`strip_suffix`
_SUFFIX = """
thanks | thank you | thank you very much | thanks a lot | cheers | robot | thanks robot |
for me | for us | over here | over to me | if you can | if you could | if possible |
when you can | quickly | real quick | again | as well | too | ok | okay | then |
will you | would you | can you | could you | yes | now | right now | to me | to us | here |
instead | up | over | is | are | go | gone | went | at
"""


def _phrases(table: str) -> list[tuple[str, ...]]:
    return [tuple(p.split()) for p in table.replace('\n', ' ').split('|') if p.strip()]


@dataclass(frozen=True)
class _Entry:
    kind: str      # skip | skip_more | stop | verb | describe
    action: str    # 'pick' | 'find' | 'track' for verbs; '' otherwise
    where: bool = False


def _build_prefix_table() -> dict[tuple[str, ...], _Entry]:
    table: dict[tuple[str, ...], _Entry] = {}
    for p in _phrases(_SKIP):
        table[p] = _Entry('skip', '')
    for p in _phrases(_SKIP_MORE):
        table[p] = _Entry('skip_more', '')
    for p in _phrases(_STOP):
        table[p] = _Entry('stop', '')
    for p in _phrases(_DESCRIBE):
        table[p] = _Entry('describe', '')
    for action, phrases in _VERBS.items():
        for p in _phrases(phrases):
            # a verb wins over a skip phrase of the same words ("i need" the cup vs "i need to")
            table[p] = _Entry('verb', 'find' if action == 'where' else action,
                              where=action == 'where')
    return table


PREFIX_TABLE = _build_prefix_table()
SUFFIXES = sorted(_phrases(_SUFFIX), key=len, reverse=True)
_LONGEST = max(len(p) for p in PREFIX_TABLE)
_TOKEN = re.compile(r"[^\W_]+(?:['\-][^\W_]+)*")      # words, with inner ' and -


# --------------------------------------------------------------------------------------------
# Steps

def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens with contractions expanded, fillers dropped, stutters collapsed.

    >>> tokenize("Um, I'd like the the RED cup, please!")
    ['i', 'would', 'like', 'the', 'red', 'cup']
    """
    text = text.lower().replace('\u2019', "'").replace('\u2018', "'")
    tokens: list[str] = []
    for word in _TOKEN.findall(text):
        word = word.strip("'")
        tokens.extend(CONTRACTIONS.get(word, word).split())
    tokens = [t for i, t in enumerate(tokens) if t not in ANYWHERE and not (
        t in ADVERBS and i > 0 and tokens[i - 1] in _BEFORE_ADVERB)]
    return collapse_repeats(tokens)


def collapse_repeats(tokens: list[str], longest: int = 3) -> list[str]:
    """Drop an n-gram (n <= ``longest``) that repeats the one right before it."""
    out: list[str] = []
    for token in tokens:
        out.append(token)
        for n in range(1, longest + 1):
            if len(out) >= 2 * n and out[-n:] == out[-2 * n:-n]:
                del out[-n:]
                break
    return out


@dataclass
class Prefix:
    """What :func:`read_prefix` found before the expression."""
    kind: str = ''              # 'stop' | 'describe' | 'verb' | '' (no verb: a bare phrase)
    action: str = ''            # 'pick' | 'find' | 'track' when kind == 'verb'
    verb: tuple[str, ...] = ()  # the verb's words
    where: bool = False         # "where ... is" questions
    rest: tuple[str, ...] = ()  # the words after it


def _longest_match(tokens: list[str], start: int) -> tuple[tuple[str, ...], _Entry] | None:
    for n in range(min(_LONGEST, len(tokens) - start), 0, -1):
        phrase = tuple(tokens[start:start + n])
        entry = PREFIX_TABLE.get(phrase)
        if entry is not None:
            return phrase, entry
    return None


def read_prefix(tokens: list[str]) -> Prefix:
    """Walk the prefix tables from the left (see the module docstring, step 2)."""
    i = 0
    while i < len(tokens):
        found = _longest_match(tokens, i)
        if found is None:
            break
        phrase, entry = found
        end = i + len(phrase)
        if entry.kind == 'skip':
            i = end
        elif entry.kind == 'skip_more':
            if end == len(tokens) or _only_suffix(tokens[end:]):
                return Prefix('stop')
            i = end
        elif entry.kind in ('stop', 'describe'):
            return Prefix(entry.kind)
        else:
            return Prefix('verb', entry.action, phrase, entry.where, tuple(tokens[end:]))
    return Prefix('', '', (), False, tuple(tokens[i:]))


def _only_suffix(tokens: list[str]) -> bool:
    return not strip_suffix(list(tokens), Prefix())


def _suffix_applies(phrase: tuple[str, ...], before: list[str], prefix: Prefix) -> bool:
    """Guards for trailing words that can also belong to the description."""
    last = before[-1] if before else ''
    if phrase in (('to', 'me'), ('to', 'us')):
        return last not in _NEAR_WORDS                     # "the cup closest to me"
    if phrase == ('right', 'now'):
        return last != 'the'                               # "the cup on the right now"
    if phrase == ('here',):
        return prefix.action == 'pick'                     # "bring it here"; "the cup here"
    if phrase in (('up',), ('over',)):
        return bool(prefix.verb) and PARTICLES.get(prefix.verb[0]) == phrase[0]
    if len(phrase) == 1 and phrase[0] in WHERE_CLOSERS:
        return prefix.where                                # "tell me where the box is"
    return True


def strip_suffix(tokens: list[str], prefix: Prefix) -> list[str]:
    """Peel trailing fillers and particles off ``tokens`` until none applies (step 3)."""
    changed = True
    while changed and tokens:
        changed = False
        for phrase in SUFFIXES:
            n = len(phrase)
            if len(tokens) >= n and tuple(tokens[-n:]) == phrase \
                    and _suffix_applies(phrase, tokens[:-n], prefix):
                del tokens[-n:]
                changed = True
                break
    return tokens


def _category(token: str) -> bool:
    return token in CATEGORIES or token.rstrip('s') in CATEGORIES or (
        token.endswith('es') and token[:-2] in CATEGORIES)


def could_describe(token: str) -> bool:
    """True for a word that can be part of a referring expression's description."""
    return (_category(token) or token in COLORS or token in DESCRIBING or token in RELATIONAL
            or token.endswith(('est', 'most')))


def drop_unknown_carrier(tokens: list[str]) -> list[str]:
    """Drop leading words that cannot describe an object when a determiner follows (step 4).

    "push the red cup" -> "the red cup"; "mug next to the bowl" keeps every word ("next" is
    relational, so "mug" may be an object name outside the vocabulary). A known non-pick verb
    ("push", "move") is dropped even without a determiner after it.
    """
    if not tokens or tokens[0] in DETERMINERS:
        return tokens
    for k in range(1, min(len(tokens), 5)):
        if tokens[k] in DETERMINERS:
            relative = tokens[k] in ('that', 'this') and tokens[k + 1:k + 2] in (['is'], ['was'])
            if not relative and not any(could_describe(t) for t in tokens[:k]):
                return tokens[k:]
            break
    if tokens[0] in OTHER_VERBS and len(tokens) > 1:
        return tokens[1:]
    return tokens


def expression_words(prefix: Prefix) -> list[str]:
    """The referring expression's words for a verb or bare-phrase prefix (steps 3 and 4)."""
    tokens = list(prefix.rest)
    # "give me the cup", "find us the bowl", "grab for me the ball"
    for lead in (('for', 'me'), ('for', 'us'), ('me',), ('us',)):
        if prefix.kind == 'verb' and tuple(tokens[:len(lead)]) == lead:
            tokens = tokens[len(lead):]
            break
    tokens = strip_suffix(tokens, prefix)
    return drop_unknown_carrier(tokens)


def names_nothing(tokens: list[str]) -> bool:
    """True if the words only point ("it", "that one") without saying which object."""
    return all(t in REFERENCE_ONLY for t in tokens)
