"""The portal: server-rendered pages (Jinja, no JavaScript needed), their CSS, and error pages."""
