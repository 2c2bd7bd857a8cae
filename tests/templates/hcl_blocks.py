"""The block structure of HCL files: which arguments and nested blocks each block sets.

Just enough of HCL's native syntax for checking templates against provider schemas:
blocks with labels, arguments (``name = expression``), ``dynamic "x" { content { ... } }``
(returned as a block ``x``), comments, strings with ``${...}`` interpolation, heredocs.
Expressions are skipped, not evaluated: only their extent matters.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Block:
    """One block: its type, labels, arguments (name -> line) and nested blocks."""

    type: str
    labels: list[str]
    line: int
    attrs: dict[str, int] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)
    dynamic: bool = False


class HclError(ValueError):
    """The text is not HCL this parser understands."""


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def line(self) -> int:
        return self.s.count("\n", 0, self.i) + 1

    def peek(self, n: int = 1) -> str:
        return self.s[self.i : self.i + n]

    def skip_space(self, newlines: bool = True) -> None:
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if c in " \t\r" or (newlines and c == "\n"):
                self.i += 1
            elif c == "#" or s.startswith("//", self.i):
                end = s.find("\n", self.i)
                self.i = len(s) if end < 0 else end
            elif s.startswith("/*", self.i):
                end = s.find("*/", self.i + 2)
                if end < 0:
                    raise HclError("unterminated comment")
                self.i = end + 2
            else:
                return

    def ident(self) -> str:
        start = self.i
        while self.i < len(self.s) and (self.s[self.i].isalnum() or self.s[self.i] in "_-"):
            self.i += 1
        if start == self.i:
            raise HclError(f"line {self.line()}: expected a name, found {self.peek(20)!r}")
        return self.s[start : self.i]

    def string(self) -> str:
        """A quoted string starting at ``"``; interpolations are skipped, the raw text returned."""
        assert self.s[self.i] == '"'
        self.i += 1
        start = self.i
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "\\":
                self.i += 2
            elif c == '"':
                self.i += 1
                return self.s[start : self.i - 1]
            elif self.s.startswith("${", self.i) or self.s.startswith("%{", self.i):
                self.i += 2
                self.expression(stop="}")
                self.i += 1
            elif c == "\n":
                raise HclError(f"line {self.line()}: newline in string")
            else:
                self.i += 1
        raise HclError("unterminated string")

    def heredoc(self) -> None:
        self.i += 2
        if self.peek() == "-":
            self.i += 1
        marker = self.ident()
        end = self.s.find("\n", self.i)
        while end >= 0:
            nxt = self.s.find("\n", end + 1)
            line = self.s[end + 1 : nxt if nxt >= 0 else len(self.s)]
            if line.strip() == marker:
                self.i = end + 1 + len(line)
                return
            end = nxt
        raise HclError(f"unterminated heredoc {marker}")

    def expression(self, stop: str = "\n") -> None:
        """Skip an expression up to (not including) ``stop`` at bracket depth 0."""
        depth = 0
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if depth == 0 and (c == stop or (stop == "\n" and c == "}")):
                return
            if c == '"':
                self.string()
            elif s.startswith("<<", self.i) and (
                s[self.i + 2 : self.i + 3].isalpha() or s[self.i + 2 : self.i + 3] == "-"
            ):
                self.heredoc()
            elif c == "#" or s.startswith("//", self.i) or s.startswith("/*", self.i):
                self.skip_space(newlines=False)
            elif c in "([{":
                depth += 1
                self.i += 1
            elif c in ")]}":
                depth -= 1
                self.i += 1
            else:
                self.i += 1
        if stop != "\n":
            raise HclError(f"expected {stop!r} before the end")

    def body(self, top: bool = False) -> tuple[dict[str, int], list[Block]]:
        attrs: dict[str, int] = {}
        blocks: list[Block] = []
        while True:
            self.skip_space()
            if self.i >= len(self.s):
                if top:
                    return attrs, blocks
                raise HclError("unexpected end of file inside a block")
            if self.peek() == "}":
                if top:
                    raise HclError(f"line {self.line()}: unbalanced }}")
                self.i += 1
                return attrs, blocks
            line = self.line()
            name = self.ident()
            self.skip_space(newlines=False)
            if self.peek() == "=" and self.peek(2) != "==":
                self.i += 1
                self.expression()
                if name in attrs:
                    raise HclError(f"line {line}: argument {name} set twice")
                attrs[name] = line
                continue
            labels = []
            while self.peek() != "{":
                if self.peek() == '"':
                    labels.append(self.string())
                else:
                    labels.append(self.ident())
                self.skip_space(newlines=False)
            self.i += 1
            inner_attrs, inner_blocks = self.body()
            if name == "dynamic":
                content = next((b for b in inner_blocks if b.type == "content"), None)
                if not labels or content is None:
                    raise HclError(f"line {line}: dynamic block without a label or content")
                blocks.append(Block(labels[0], [], line, content.attrs, content.blocks, dynamic=True))
            else:
                blocks.append(Block(name, labels, line, inner_attrs, inner_blocks))


def parse(text: str) -> list[Block]:
    """The top-level blocks of an HCL file (``resource``, ``data``, ``variable``, ...)."""
    parser = _Parser(text)
    attrs, blocks = parser.body(top=True)
    if attrs:
        raise HclError(f"arguments outside any block: {sorted(attrs)}")
    return blocks
