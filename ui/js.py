"""The page's only script: turns clicks on ``[n]`` links into a request for the sources panel.

It runs as the sources panel's ``js_on_load`` (Gradio 6 gives it ``element``, ``trigger`` and
``watch``). Answers themselves carry no script: a marker is a plain link to ``#cite-<id>-<n>``,
which survives the chatbot's HTML sanitiser; this listener catches the click before the browser
follows the link and fires the panel's ``cite`` event with the answer id and marker.
"""

SOURCES_PANEL_JS = r"""
const onCite = (event) => {
  const link = event.target.closest ? event.target.closest('a[href^="#cite-"]') : null;
  if (!link) return;
  const match = /^#cite-([0-9a-f]+)-(\d+)$/.exec(link.getAttribute('href') || '');
  if (!match) return;
  event.preventDefault();
  event.stopPropagation();
  // Remember that a click asked for this, so only then the panel scrolls itself into view.
  window.__ragCiteRequested = true;
  trigger('cite', {answer_id: match[1], marker: Number(match[2])});
};
// One listener per page: a re-mounted panel replaces the old one instead of adding a second.
if (window.__ragCiteListener) document.removeEventListener('click', window.__ragCiteListener, true);
window.__ragCiteListener = onCite;
document.addEventListener('click', onCite, true);

watch('value', () => {
  if (!window.__ragCiteRequested) return;
  window.__ragCiteRequested = false;
  const card = element.querySelector('.source-card.selected');
  if (card) card.scrollIntoView({block: 'nearest', behavior: 'smooth'});
});
"""

HEADER_JS = r"""
// On a phone the settings sidebar covers the whole screen: start with it closed there.
if (window.matchMedia('(max-width: 768px)').matches) {
  let tries = 0;
  const closeSidebar = () => {
    const toggle = document.querySelector('#settings.open .toggle-button');
    if (toggle) toggle.click();
    else if (tries++ < 20) setTimeout(closeSidebar, 100);
  };
  closeSidebar();
}
"""
