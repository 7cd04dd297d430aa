"""How names are compared in the stock search: lower case, without accents, with œ/æ spelled out.

"Œufs frais" and "oeufs" meet as "oeufs". PostgreSQL keeps each product's folded name in a generated
column (`products.search_name`, `fold_sql`), and the words typed are folded here (`fold_text`) with
the same tables, so both sides agree without the `unaccent` extension (not in every PostgreSQL build,
pgserver's included). A test holds the two to the same answer for any name.
"""

from __future__ import annotations

ACCENTED = "àâäáãåÀÂÄÁÃÅçÇéèêëÉÈÊËíìîïÍÌÎÏñÑóòôöõÓÒÔÖÕúùûüÚÙÛÜýÿÝŸ"
PLAIN = "aaaaaaAAAAAAcCeeeeEEEEiiiiIIIInNoooooOOOOOuuuuUUUUyyYY"
LIGATURES = (("œ", "oe"), ("Œ", "oe"), ("æ", "ae"), ("Æ", "ae"))
_FOLD = str.maketrans(ACCENTED, PLAIN)


def fold_text(text: str) -> str:
    text = text.translate(_FOLD)
    for ligature, letters in LIGATURES:
        text = text.replace(ligature, letters)
    return text.lower()


def fold_sql(expression: str) -> str:
    """The SQL that folds `expression` (a column or a parameter) as `fold_text` does."""
    folded = f"translate({expression}, '{ACCENTED}', '{PLAIN}')"
    for ligature, letters in LIGATURES:
        folded = f"replace({folded}, '{ligature}', '{letters}')"
    return f"lower({folded})"
