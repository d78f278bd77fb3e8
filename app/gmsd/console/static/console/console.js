// The console's entry point: one page, two views (#services, #journeys) switched by the URL's hash.

import { setUpJourneys } from "./journeys.js";
import { setUpServices } from "./services.js";

const VIEWS = ["services", "journeys"];

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
}

window.addEventListener("hashchange", showView);
showView();
setUpJourneys();
setUpServices();
