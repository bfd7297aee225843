// Behaviour the pages' markup asks for with data- attributes: the Content-Security-Policy
// (playground/settings.py, SECURE_CSP) runs no inline script or on…="" handler.
// Delegated from the document, so it holds for content htmx swaps in too.

// <input type="checkbox" data-check-all="SELECTOR">: checks or unchecks every box SELECTOR matches.
document.addEventListener("change", (event) => {
  const box = event.target;
  if (!(box instanceof HTMLInputElement) || !box.dataset.checkAll) return;
  for (const other of document.querySelectorAll(box.dataset.checkAll)) {
    other.checked = box.checked;
  }
});
