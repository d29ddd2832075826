"""The roster side: what the school's MIS says, read, checked and (for demos and tests) generated.

`model` holds the values (people, groups, memberships); `sources/` reads each export format into them;
`validate` reports on a roster without contacting Entra; `sample` writes a deterministic sample school.
Nothing here talks to Graph.
"""
