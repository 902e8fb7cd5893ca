"""The page's only scripts: ``[n]`` links open the sources panel, Copy links copy an answer as Markdown.

``SOURCES_PANEL_JS`` runs as the sources panel's ``js_on_load`` (Gradio 6 gives it ``element``,
``trigger`` and ``watch``). Answers themselves carry no script: a marker is a plain link to
``#cite-<id>-<n>`` and a copy button a link to ``#copy-<id>``, which survive the chatbot's HTML
sanitiser; one listener catches the click before the browser follows the link and either fires
the panel's ``cite`` event with the answer id and marker, or copies the Markdown that sits hidden
beside the link (``ui.render.answer_tools_html``), with no request to the server.

On a phone the sources panel falls below the chat, so it starts folded (``HEADER_JS``) and a
click on a marker unfolds it and scrolls to the passage.
"""

SOURCES_PANEL_JS = r"""
const copyText = async (text) => {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (error) {
    // Not a secure context (http on another host): the old way still works on a click.
    const area = document.createElement('textarea');
    area.value = text;
    area.style.position = 'fixed';
    area.style.left = '-9999px';
    document.body.appendChild(area);
    area.select();
    const copied = document.execCommand('copy');
    area.remove();
    return copied;
  }
};
const onCopy = (link) => {
  const hidden = link.parentElement && link.parentElement.querySelector('.answer-export');
  if (!hidden) return;
  window.__ragLastCopy = hidden.textContent;
  copyText(hidden.textContent).then((copied) => {
    link.textContent = copied ? 'Copied' : 'Copy failed';
    setTimeout(() => { link.textContent = 'Copy'; }, 1500);
  });
};
const unfoldSources = () => {
  const toggle = document.querySelector('#sources-accordion > button.label-wrap:not(.open)');
  if (toggle) toggle.click();
};
const onCite = (event) => {
  const copy = event.target.closest ? event.target.closest('a[href^="#copy-"]') : null;
  if (copy) {
    event.preventDefault();
    event.stopPropagation();
    onCopy(copy);
    return;
  }
  const link = event.target.closest ? event.target.closest('a[href^="#cite-"]') : null;
  if (!link) return;
  const match = /^#cite-([0-9a-f]+)-(\d+)$/.exec(link.getAttribute('href') || '');
  if (!match) return;
  event.preventDefault();
  event.stopPropagation();
  // Remember that a click asked for this, so only then the panel scrolls itself into view.
  window.__ragCiteRequested = true;
  unfoldSources();
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
// On a phone the settings sidebar covers the whole screen, and the sources panel sits below the
// chat: start with the sidebar closed and the panel folded there.
if (window.matchMedia('(max-width: 768px)').matches) {
  const closeWhenThere = (selector) => {
    let tries = 0;
    const close = () => {
      const toggle = document.querySelector(selector);
      if (toggle) toggle.click();
      else if (tries++ < 20) setTimeout(close, 100);
    };
    close();
  };
  closeWhenThere('#settings.open .toggle-button');
  closeWhenThere('#sources-accordion > button.label-wrap.open');
}
"""
