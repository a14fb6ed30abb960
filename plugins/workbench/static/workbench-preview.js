// Card previews on the flow pages: each .wb-preview holds one feed-shaped card (data-card) that
// the JS SDK's renderPreview draws exactly as a customer's stream would, read-only.
import { renderPreview } from "/sdk/hub-sdk.js";

const previews = new WeakMap();

function theme() {
  return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

function renderAll(root) {
  for (const element of root.querySelectorAll(".wb-preview")) {
    if (previews.has(element)) continue;
    let card;
    try {
      card = JSON.parse(element.dataset.card || "null");
    } catch {
      element.textContent = "This card cannot be previewed.";
      continue;
    }
    if (!card) continue;
    previews.set(element, renderPreview({ element, theme: theme(), title: `Preview of ${card.templateName || "a card"}` }, [card]));
    element.dataset.rendered = "true";
  }
}

renderAll(document);
// The editor's actions swap #wb-flow: draw the previews of the new fragment.
document.addEventListener("htmx:afterSettle", () => renderAll(document));
