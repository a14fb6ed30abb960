// Customer Center: card previews rendered by the JavaScript SDK exactly as the customer's app
// renders them (read-only), with a light/dark toggle. Cards arrive in data-cc-card attributes,
// on the first load and after every htmx swap of the card list.
import { renderPreview } from "/sdk/hub-sdk.js";

const previews = new Set();

function theme() {
  const checked = document.querySelector('input[name="cc-theme"]:checked');
  return checked ? checked.value : "light";
}

function mount(root) {
  for (const element of root.querySelectorAll("[data-cc-card]")) {
    if (element.dataset.ccMounted) continue;
    element.dataset.ccMounted = "true";
    let card;
    try {
      card = JSON.parse(element.dataset.ccCard);
    } catch {
      continue;
    }
    const preview = renderPreview({ element, theme: theme(), title: element.getAttribute("aria-label") || "Card preview",
      container: (card.targetStreamIds || ["default"])[0] }, [card]);
    preview.element = element;
    previews.add(preview);
  }
  // Previews whose element left the page (a tab or container change) are let go.
  for (const preview of [...previews]) {
    if (!preview.element.isConnected) previews.delete(preview);
  }
  document.documentElement.dataset.ccPreviews = String(previews.size);
}

document.addEventListener("change", (event) => {
  if (event.target instanceof HTMLInputElement && event.target.name === "cc-theme") {
    for (const preview of previews) preview.setTheme(event.target.value);
    document.documentElement.dataset.ccTheme = event.target.value;
  }
});
document.addEventListener("htmx:load", (event) => mount(event.detail.elt.parentElement || document));
mount(document);
document.documentElement.dataset.ccTheme = theme();
