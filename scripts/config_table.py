"""Print the README's configuration table from `core.settings.Settings` (the one list of variables)."""

from __future__ import annotations

from pydantic import SecretStr

from core.settings import Settings


def rows() -> list[str]:
    lines = ["| variable | default | what it does |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        secret = "SecretStr" in str(field.annotation) or isinstance(default, SecretStr)
        shown = "—" if default in (None, "", [], {}) else f"`{default}`"
        if secret:
            shown = "— (secret)"
        lines.append(f"| `{name.upper()}` | {shown} | {field.description or ''} |")
    return lines


if __name__ == "__main__":
    print("\n".join(rows()))
