// Small behaviours of the staff UI; everything else is htmx attributes in the pages.
document.addEventListener("htmx:responseError", (event) => {
  // Keep server-rendered error fragments (422 with a form's errors) instead of dropping them.
  const xhr = event.detail.xhr;
  if (xhr.status === 422 || xhr.status === 409) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
document.addEventListener("htmx:beforeSwap", (event) => {
  const xhr = event.detail.xhr;
  if (xhr.status === 422 || xhr.status === 409) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
