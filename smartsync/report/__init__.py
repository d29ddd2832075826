"""What a person reads after a run: the change report on a terminal or in cron mail, and the HTML page.

`model` turns a plan or a run's result into per-object changes in the school's words (pure values, no
rich); `words` phrases them; `text` renders the report with rich (the only module that imports it);
`html` renders the self-contained page from the Jinja2 templates in `templates/`.
"""
