// The review queue's keyboard (templates/review/review.html), loaded on that page only.
//
//   j / k            next / previous result (the panel's own links: htmx swaps the panel)
//   0 … 9            score 0.0 … 0.9;  = or Shift+0: 1.0;  -: no score
//   l / Shift+L      next / previous label
//   c                the comment; Escape leaves it, Ctrl+Enter saves from it
//   Enter            save and go to the next result (the form's own submit)
//
// The keys only click the page's links and submit its form, so the page works the same
// with Tab and Enter, and without this file. Listeners are delegated from the document:
// they hold for every panel htmx swaps in. No key does anything while a text field,
// a select or the comment has the focus, and none is taken with Ctrl, Alt or Meta.
(() => {
  "use strict";

  const PANEL = "review-panel";
  const NOT_TYPED = new Set(["range", "checkbox", "radio", "button", "submit", "reset", "image", "color", "file"]);

  const panel = () => document.getElementById(PANEL);
  const reviewForm = () => document.querySelector(`#${PANEL} form.review-form`);

  function isTyping(el) {
    if (!(el instanceof Element)) return false;
    if (el instanceof HTMLElement && el.isContentEditable) return true;
    if (el instanceof HTMLTextAreaElement || el instanceof HTMLSelectElement) return true;
    return el instanceof HTMLInputElement && !NOT_TYPED.has(el.type);
  }

  // Links, buttons and the like answer Enter themselves.
  function isControl(el) {
    return el instanceof Element && el.closest("a[href], button, summary, select, [role='button']") !== null;
  }

  function scoreParts(form) {
    return {
      range: form.querySelector("#review-score"),
      given: form.querySelector("#review-scored"),
      shown: form.querySelector("#review-score-value"),
    };
  }

  function showScore(form) {
    const { range, given, shown } = scoreParts(form);
    if (!range || !given || !shown) return;
    shown.textContent = given.checked ? Number(range.value).toFixed(2).replace(/0$/, "") : "—";
  }

  function setScore(form, value) {
    const { range, given } = scoreParts(form);
    if (!range || !given) return;
    range.value = String(value);
    given.checked = true;
    showScore(form);
  }

  function clearScore(form) {
    const { given } = scoreParts(form);
    if (!given) return;
    given.checked = false;
    showScore(form);
  }

  function cycleLabel(form, step) {
    const radios = Array.from(form.querySelectorAll("input[type='radio'][name='label']"));
    if (!radios.length) return;
    const current = radios.findIndex((radio) => radio.checked);
    const next = radios[(current + step + radios.length) % radios.length];
    next.checked = true;
    next.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function follow(id) {
    const link = document.getElementById(id);
    if (link instanceof HTMLElement) link.click();
  }

  function save(form) {
    if (typeof form.requestSubmit === "function") form.requestSubmit();
    else form.submit();
  }

  // The digit a key stands for (0-9), 10 for "1.0", or null.
  function scoreKey(event) {
    if (event.key === "=" || (event.shiftKey && event.code === "Digit0")) return 10;
    if (event.shiftKey) return null;
    if (/^[0-9]$/.test(event.key)) return Number(event.key);
    return null;
  }

  document.addEventListener("keydown", (event) => {
    const here = panel();
    if (!here || event.defaultPrevented || event.isComposing) return;
    const target = event.target;
    const form = reviewForm();

    // In the comment (or any field of the panel): Escape leaves it, Ctrl+Enter saves.
    if (isTyping(target)) {
      if (!here.contains(target)) return;
      if (event.key === "Escape") {
        event.preventDefault();
        target.blur();
        here.focus();
      } else if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && form && form.contains(target)) {
        event.preventDefault();
        save(form);
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;

    if (event.key === "Enter") {
      if (!form || isControl(target)) return;
      event.preventDefault();
      save(form);
      return;
    }
    if (event.key === "j" || event.key === "k") {
      event.preventDefault();
      follow(event.key === "j" ? "review-next" : "review-prev");
      return;
    }
    if (!form) return;
    const digit = scoreKey(event);
    if (digit !== null) {
      event.preventDefault();
      setScore(form, (digit / 10).toFixed(1));
    } else if (event.key === "-") {
      event.preventDefault();
      clearScore(form);
    } else if (event.key === "l" || event.key === "L") {
      event.preventDefault();
      cycleLabel(form, event.key === "l" ? 1 : -1);
    } else if (event.key === "c") {
      const comment = form.querySelector("#review-comment");
      if (comment instanceof HTMLElement) {
        event.preventDefault();
        comment.focus();
      }
    }
  });

  // Moving the slider gives a score; the box and the number beside it follow.
  document.addEventListener("input", (event) => {
    const form = reviewForm();
    if (!form || event.target !== form.querySelector("#review-score")) return;
    const { given } = scoreParts(form);
    if (given) given.checked = true;
    showScore(form);
  });
  document.addEventListener("change", (event) => {
    const form = reviewForm();
    if (form && event.target === form.querySelector("#review-scored")) showScore(form);
  });

  // A form that does not validate comes back with 400 and its errors: swap it in
  // (htmx leaves 4xx answers out by default), so nothing typed is lost.
  document.addEventListener("htmx:beforeSwap", (event) => {
    const detail = event.detail;
    if (detail.xhr && detail.xhr.status === 400 && detail.target && detail.target.id === PANEL) {
      detail.shouldSwap = true;
      detail.isError = false;
    }
  });

  // After a swap the focus is on the new panel (unless htmx kept it on a field
  // of the same id), so the next key works, and the panel's top is in view.
  function focusPanel() {
    const here = panel();
    if (!here) return;
    const active = document.activeElement;
    if (active && active !== document.body && here.contains(active)) return;
    if (here.getBoundingClientRect().top < 0) here.scrollIntoView({ block: "start" });
    here.focus({ preventScroll: true });
  }
  document.addEventListener("htmx:afterSettle", focusPanel);
  // A back / forward through htmx's history restores the page: the panel again.
  document.addEventListener("htmx:historyRestore", focusPanel);

  function onLoad() {
    if (!document.activeElement || document.activeElement === document.body) focusPanel();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", onLoad);
  else onLoad();
})();
