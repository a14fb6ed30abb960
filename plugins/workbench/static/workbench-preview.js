// Card previews on the flow pages: each .wb-preview holds one feed-shaped card (data-card) that
// the JS SDK's renderPreview draws exactly as a customer's stream would, read-only.
import { renderPreview } from "/sdk/hub-sdk.js";

const previews = new Map();
let theme = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";

function renderAll(root) {
  for (const [element] of previews) {
    if (!element.isConnected) previews.delete(element);
  }
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
    previews.set(element, renderPreview({ element, theme, title: `Preview of ${card.templateName || "a card"}` }, [card]));
    element.dataset.rendered = "true";
  }
  const chooser = document.getElementById("wb-preview-theme");
  if (chooser) chooser.value = theme;
}

// Light or dark, as the customer's app may show it.
document.addEventListener("change", (event) => {
  if (event.target.id !== "wb-preview-theme") return;
  theme = event.target.value;
  for (const preview of previews.values()) preview.setTheme(theme);
});

renderAll(document);
// The editor's actions swap #wb-flow: draw the previews of the new fragment.
document.addEventListener("htmx:afterSettle", () => renderAll(document));
