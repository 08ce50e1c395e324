// The world directory: search over GET /api/worlds?q=&limit= and links to each world's page.
// Expected answer: {"worlds": [{"world_id", "name", "tags", "visitors", "description"}...],
// "next_cursor"}; any other field is ignored, and a node without the route (404) gets a note
// plus a box to open a world by id.
import { $, el, errorMessage } from "./ui.js";
import { VerifiedFetcher, parseCid } from "./verified.js";

export const worldHref = (id) => `/w/${id}`;

async function search(q) {
  const url = new URL("/api/worlds", location.href);
  if (q) url.searchParams.set("q", q);
  url.searchParams.set("limit", "50");
  const res = await fetch(url, { headers: { Accept: "application/json" } });
  let body = null;
  try { body = await res.json(); } catch { body = null; }
  if (!res.ok) {
    const err = new Error(errorMessage(body, res.status));
    err.status = res.status;
    throw err;
  }
  return Array.isArray(body?.worlds) ? body.worlds : [];
}

// A thumbnail is shown only once its blocks verify against the card's CID (a gateway could
// still list a wrong CID for a world; the world page checks the signed record itself).
function thumbnail(w, fetcher) {
  const img = el("img", { class: "thumb", alt: "" });
  img.hidden = true;
  if (typeof w.cid === "string" && typeof w.thumbnail === "string") {
    Promise.resolve().then(() => fetcher.resolve(parseCid(w.cid), w.thumbnail))
      .then((cid) => fetcher.file(cid))
      .then((bytes) => { img.src = URL.createObjectURL(new Blob([bytes])); img.hidden = false; })
      .catch(() => { img.remove(); });
  }
  return img;
}

function card(w, fetcher) {
  const id = String(w.world_id ?? "");
  const tags = Array.isArray(w.tags) ? w.tags.slice(0, 8).join(", ") : "";
  const visitors = Number.isInteger(w.visitors) ? `${w.visitors} here now` : "";
  return el("li", { class: "world", dataset: { world: id } },
    thumbnail(w, fetcher),
    el("a", { href: worldHref(id), text: String(w.name ?? id) }),
    el("div", { class: "meta", text: [visitors, tags].filter(Boolean).join(" · ") }),
    el("div", { class: "desc", text: String(w.description ?? "").slice(0, 200) }));
}

export function showDirectory() {
  $("#directory").hidden = false;
  $("#world").hidden = true;
  document.title = "Flux worlds";
  const fetcher = new VerifiedFetcher();
  const form = $("#search-form"), input = $("#search"), results = $("#results"), note = $("#dir-note");
  const run = async () => {
    note.textContent = "Searching…";
    try {
      const worlds = await search(input.value.trim());
      results.replaceChildren(...worlds.map((w) => card(w, fetcher)));
      note.textContent = worlds.length ? `${worlds.length} world(s)` : "No world matches.";
      document.body.dataset.state = "directory";
    } catch (e) {
      results.replaceChildren();
      note.textContent = e.status === 404
        ? "This node does not offer a world directory; open a world by its id below."
        : `Search failed: ${e.message}`;
      document.body.dataset.state = "directory-error";
    }
  };
  form.addEventListener("submit", (e) => { e.preventDefault(); run(); });
  $("#open-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = $("#open-id").value.trim();
    if (id) location.href = worldHref(id);
  });
  run();
}
