import { describe, expect, it } from 'vitest';
import { repoSlug } from '../../src/git/slug.js';

describe('repoSlug from remote.origin.url', () => {
  it.each([
    ['https://github.com/acme/widget.git', 'acme/widget'],
    ['https://github.com/acme/widget', 'acme/widget'],
    ['https://github.com/acme/widget/', 'acme/widget'],
    ['https://github.com/acme/widget.git/', 'acme/widget'],
    ['http://github.com/acme/widget', 'acme/widget'],
    ['HTTPS://GitHub.COM/acme/widget', 'acme/widget'],
    ['https://user:token@github.com/acme/widget.git', 'acme/widget'],
    ['ssh://git@github.com/acme/widget.git', 'acme/widget'],
    ['git://github.com/acme/widget.git', 'acme/widget'],
    ['git@github.com:acme/widget.git', 'acme/widget'],
    ['github.com:acme/widget', 'acme/widget'],
    ['git@github.com:ac-me/w_i.d-get', 'ac-me/w_i.d-get'],
    ['git@github.com:ac--me/widget', 'ac--me/widget'],
    ['git@github.com:acme/GIZMO.WIKI', 'acme/GIZMO.WIKI'],
    ['git@github.com:acme/wiki', 'acme/wiki'],
  ])('%s → %s', (url, slug) => {
    expect(repoSlug(url)).toBe(slug);
  });

  it.each([
    'git+ssh://git@github.com/acme/widget.git',
    'file:///srv/acme/widget.git',
    'https://www.github.com/acme/widget',
    'https://github.com./acme/widget',
    'https://github.com:443/acme/widget',
    'https://gitlab.com/acme/widget',
    'git@bitbucket.org:acme/widget.git',
    'https://github.com/acme',
    'https://github.com/acme/widget/extra',
    'https://github.com//widget',
    'https://github.com/-acme/widget',
    'https://github.com/acme-/widget',
    'https://github.com/acme_corp/widget',
    'https://github.com/acme.co/widget',
    'https://github.com/acme/-widget',
    'https://github.com/acme/.',
    'https://github.com/acme/..',
    'https://github.com/acme/widget.wiki',
    'https://github.com/acme/wid get',
    '/srv/git/widget.git',
    '',
  ])('%s → ""', (url) => {
    expect(repoSlug(url)).toBe('');
  });
});
