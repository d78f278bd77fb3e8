"""The web console (`/console/`) and the interactive API reference (`/docs`).

Static pages shipped inside the package (`static/`), no build step and no CDN, which call the
public APIs from the browser; plus two read-only JSON endpoints of gmsd's own that the APIs do
not offer: the configured services, and what a GMS service's storage holds beside its strings.
"""
