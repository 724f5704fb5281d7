"""What a page shows for a markdown string: the browser drops the backslash of an escaped character."""

import re


def shown(markdown: str) -> str:
    return re.sub(r"\\(.)", r"\1", markdown)
