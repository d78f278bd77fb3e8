// The console's entry point: one page, three views (#services, #journeys, #profiles) switched by the
// URL's hash.

import { setUpJourneys } from "./journeys.js";
import { profilesShown, setUpProfiles } from "./profiles.js";
import { setUpServices } from "./services.js";

const VIEWS = ["services", "journeys", "profiles"];

function showView() {
  const wanted = location.hash.slice(1);
  const view = VIEWS.includes(wanted) ? wanted : VIEWS[0];
  for (const name of VIEWS) {
    document.getElementById(`view-${name}`).hidden = name !== view;
    const link = document.getElementById(`nav-${name}`);
    if (name === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${view[0].toUpperCase()}${view.slice(1)} · gmsd console`;
  if (view === "profiles") profilesShown();
}

setUpJourneys();
setUpServices();
setUpProfiles();
window.addEventListener("hashchange", showView);
showView();
